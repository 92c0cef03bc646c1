"""Models and algorithms: quantizer, embeddings, MF, CTR models, TIGER, SASRec, training loop."""
