# Two commands do everything on a fresh clone:
#   make all    set up the environment and run the whole main job (data -> semantic IDs -> models -> results/ and plots/)
#   make test   set up the environment and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: all rest-of-main test lint setup data semantic-ids analysis mf neural tiger sequential-seed seq-tiger seq-ids \
	sequential-seeds holdout \
	cold-study tiger-long tiger-collab tiger-collab-cold cold-ensemble decoding-sweep decoding-sweep-holdout ensemble-sweep \
	ensemble-sweep-holdout sweep-sasrec sweep-sasrec-paper quantizers summary verify compare-committed bench clean \
	demo

# After the semantic IDs the main job uses both cores: item-level TIGER on one; SASRec, the two
# baselines, the analysis, MF and CTR one after another on the other (together shorter than TIGER).
all: data semantic-ids
	$(MAKE) --no-print-directory -j2 seq-tiger rest-of-main N=$(SEED)
	$(SEQ_PLOTS)
	$(MAKE) --no-print-directory summary verify compare-committed
	@echo "done: results in results/, plots in plots/"

rest-of-main: $(STAMP)
	$(SEQ_IDS)
	$(ANALYSIS)
	$(MF)
	$(NEURAL)

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# Then once more, the tests whose outcome rides on a training trajectory or on float rounding, with
# torch forced onto its plain (non-SIMD) code path: a bar that only this CPU's rounding clears
# fails here rather than on the next machine.
OTHER_CPU_TESTS = tests/test_sasrec.py tests/test_tiger.py tests/test_mf.py tests/test_rqvae.py \
	tests/test_rqkmeans.py tests/test_random_ids.py tests/test_training.py tests/test_embeddings.py
test: lint
	PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest -q
	ATEN_CPU_CAPABILITY=default PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest -q $(OTHER_CPU_TESTS)

# ruff (pinned in requirements.txt, configured in pyproject.toml): lint and formatting.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

data: $(STAMP)
	$(PY) prepare_data.py --dataset beauty
	$(PY) prepare_data.py --dataset ml-100k

# The study's semantic IDs (seed 0), the same on every machine (float64 embeddings and k-means):
# with SEED=0 the generator refuses to write other IDs, so a run that would not reproduce the
# committed results stops here with both digests. `make all EXPECT_IDS=` goes on regardless.
EXPECT_IDS ?= yes
BEAUTY_IDS := 3d68d359b799
ML100K_IDS := 07ae935d7478
expect = $(if $(and $(EXPECT_IDS),$(filter 0,$(SEED))),--expect-digest $(1))
semantic-ids: $(STAMP)
	$(PY) semantic_id_generator.py --data-dir beauty --seed $(SEED) $(call expect,$(BEAUTY_IDS))
	$(PY) semantic_id_generator.py --data-dir data/ml-100k --seed $(SEED) \
		$(call expect,$(ML100K_IDS))

define ANALYSIS
	$(PY) analyze_semantic_ids.py --data-dir beauty --reference
	$(PY) analyze_semantic_ids.py --data-dir data/ml-100k --reference
endef
define MF
	$(PY) mf_train_eval.py --data-dir data/ml-100k --seeds 0 1 2 --save-predictions --reference
	$(PY) mf_train_eval.py --data-dir beauty --seeds 0 1 2 --save-predictions --reference
endef
define NEURAL
	$(PY) neural_train_eval.py --data-dir data/ml-100k --seeds 0 1 2 --save-predictions --reference
	$(PY) neural_train_eval.py --data-dir beauty --seeds 0 1 2 --save-predictions --reference
endef

analysis: $(STAMP)
	$(ANALYSIS)

mf: $(STAMP)
	$(MF)

neural: $(STAMP)
	$(NEURAL)

# The sequential stage on the `paper` protocol (which also reports the `filtered` ranking):
# item-level TIGER in one process, the tuned SASRec and the two baselines in another, side by side.
SEQ = results/sequential_beauty
# TIGER against the ID models by item popularity, drawn from the results files of both processes
SEQ_PLOTS = $(PY) summarize_results.py --plots sequential
tiger: $(STAMP)
	$(MAKE) --no-print-directory sequential-seed N=$(SEED)

sequential-seed: $(STAMP)
	$(MAKE) --no-print-directory -j2 seq-tiger seq-ids N=$(N)
	$(SEQ_PLOTS)

# A seed of the study is a seed of the whole pipeline: TIGER of seed N reads IDs quantized with
# seed N (seed 0: make semantic-ids' in beauty/; else data/beauty_ids_seedN, made here), so the
# spread over seeds includes the ID set's own.
seed_ids = $(if $(filter 0,$(1)),beauty,data/beauty_ids_seed$(1))
seq-tiger: $(STAMP)
	$(if $(filter-out 0,$(N)),$(PY) semantic_id_generator.py --data-dir beauty --seed $(N) \
		--semantic-dir $(call seed_ids,$(N)) --quiet)
	$(PY) tiger_train_eval.py --data-dir beauty --semantic-dir $(call seed_ids,$(N)) \
		--protocol paper --models tiger_item --seed $(N) \
		--quiet --save-predictions --reference --out $(SEQ)_paper_tiger_seed$(N).json

define SEQ_IDS
	$(PY) tiger_train_eval.py --data-dir beauty --protocol paper --models sasrec most_popular \
		transition --seed $(N) --quiet --save-predictions --reference --out $(SEQ)_paper_ids_seed$(N).json
endef
seq-ids: $(STAMP)
	$(SEQ_IDS)

# Not part of `all`: seeds 1 and 2 of the paper protocol (the README's mean ± std).
sequential-seeds: $(STAMP)
	$(MAKE) --no-print-directory sequential-seed N=1
	$(MAKE) --no-print-directory sequential-seed N=2

# Not part of `all`: the `holdout` protocol (no published table uses it), each model retrained on all but the
# last item for the epochs its paper-protocol run (same seed) chose on validation.
holdout: $(STAMP)
	for n in 0 1 2; do \
		$(PY) tiger_train_eval.py --data-dir beauty --protocol holdout --models sasrec most_popular \
			transition --seed $$n --quiet --save-predictions --reference --out $(SEQ)_holdout_ids_seed$$n.json \
			--epochs-from $(SEQ)_paper_ids_seed$$n.json || exit 1; \
	done
	$(PY) tiger_train_eval.py --data-dir beauty --semantic-dir $(call seed_ids,$(SEED)) \
		--protocol holdout --models tiger_item --seed $(SEED) \
		--quiet --save-predictions --reference --out $(SEQ)_holdout_tiger_seed$(SEED).json \
		--epochs-from $(SEQ)_paper_tiger_seed$(SEED).json

# Not part of `all`: the cold-start study (5% of items held out of training and of the codebooks),
# seeds 0-2 of the quick preset's item-level TIGER and SASRec, one core each.
cold-study: $(STAMP)
	for n in 0 1 2; do \
		$(PY) tiger_train_eval.py --data-dir beauty --protocol cold --models tiger_item sasrec \
			--seed $$n --quiet --save-predictions --reference --out results/tiger_results_cold_seed$$n.json \
			--plot-dir checkpoints/plots-cold || exit 1; \
	done

# Not part of `all`: the paper's token-level encoder (~6 min per epoch on one core here) for the
# preset's 20 epochs of cosine decay, the best validation epoch tested: about two hours. An
# interrupted run continues from its last epoch with `make tiger-long RESUME=--resume`.
tiger-long: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset long --protocol paper --seed $(SEED) \
		--out $(SEQ)_paper_tiger_token_seed$(SEED).json --save-predictions --reference $(RESUME)

# Not part of `all`: collaborative semantic IDs (each item's text embedding joined with the tuned
# SASRec's item embedding, from the seed-0 paper checkpoint of `make tiger`) and item-level TIGER
# trained on them (paper protocol); about 45 minutes on one core.
COLLAB = data/beauty_collab_ids
tiger-collab: $(STAMP)
	$(PY) semantic_id_generator.py --data-dir beauty --semantic-dir $(COLLAB) --seed 0 --quiet \
		--collaborative checkpoints/tiger-sasrec-beauty-quick-paper-seed0.pt
	$(PY) tiger_train_eval.py --data-dir beauty --semantic-dir $(COLLAB) --protocol paper \
		--models tiger_item --seed $(SEED) --quiet --save-predictions --reference \
		--out $(SEQ)_paper_tiger_collab_seed$(SEED).json

# Not part of `all`: cold start with collaborative IDs. The IDs come from a SASRec trained on the
# cold protocol, which never sees the held-out items, so those are placed by their text alone (as
# a new item is); then item-level TIGER on them and on the text-only IDs, cold protocol, seed SEED.
# About 19 + 45 + 45 minutes on one core.
COLLAB_COLD = data/beauty_collab_ids_cold
tiger-collab-cold: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --protocol cold --models sasrec --seed $(SEED) \
		--quiet --save-predictions --reference --out $(SEQ)_cold_sasrec_seed$(SEED).json
	$(PY) semantic_id_generator.py --data-dir beauty --semantic-dir $(COLLAB_COLD) --seed 0 --quiet \
		--collaborative checkpoints/tiger-sasrec-beauty-quick-cold-seed$(SEED).pt
	$(PY) tiger_train_eval.py --data-dir beauty --semantic-dir $(COLLAB_COLD) --protocol cold \
		--models tiger_item --seed $(SEED) --quiet --save-predictions --reference \
		--out $(SEQ)_cold_tiger_collab_seed$(SEED).json
	$(PY) tiger_train_eval.py --data-dir beauty --protocol cold --models tiger_item --seed $(SEED) \
		--quiet --save-predictions --reference --out $(SEQ)_cold_tiger_seed$(SEED).json

# Not part of `all`: the cold-start ranking of the ensemble of those two TIGERs (text-only and
# collaborative IDs, w from the paper ensemble sweep of the same seed); about 5 minutes.
cold-ensemble: $(STAMP)
	$(PY) benchmarks/cold_ensemble.py --seed $(SEED) --quiet --check-against \
		$(SEQ)_cold_tiger_seed$(SEED).json $(SEQ)_cold_tiger_collab_seed$(SEED).json

# Not part of `all`: TIGER's beam width (20, 50) and the hybrids of TIGER and SASRec (each
# re-scoring the other's candidates, the weight chosen on validation), from the seed's paper
# checkpoints; evaluation only, about 20 minutes.
decoding-sweep: $(STAMP)
	$(PY) benchmarks/sweep_decoding.py --seed $(SEED) --semantic-dir $(call seed_ids,$(SEED)) \
		--check-against \
		$(SEQ)_paper_tiger_seed$(SEED).json $(SEQ)_paper_ids_seed$(SEED).json

# Not part of `all`: the same on the seed's holdout checkpoints (`make holdout`), test ranked
# filtered, each weight the one the seed's paper sweep above chose on validation; about 6 minutes.
decoding-sweep-holdout: $(STAMP)
	$(PY) benchmarks/sweep_decoding.py --seed $(SEED) --protocol holdout \
		--semantic-dir $(call seed_ids,$(SEED)) --weights-from results/decoding_sweep_seed$(SEED).json --check-against \
		$(SEQ)_holdout_tiger_seed$(SEED).json $(SEQ)_holdout_ids_seed$(SEED).json

# Not part of `all`: the ensemble of item-level TIGER on text-only and on collaborative IDs (their
# lists merged by score, the weight chosen on validation) beside the hybrids, from the seed's
# paper checkpoints (`make tiger`, `make tiger-collab`); evaluation only, beam 20, about 20 minutes.
ids_digest = $(shell $(PY) semantic_id_generator.py --data-dir beauty --semantic-dir $(1) --show-digest --quiet)
COLLAB_CKPT = checkpoints/tiger-tiger_item-beauty-quick-$(1)-seed$(SEED)-ids$(call ids_digest,$(COLLAB)).pt
ensemble-sweep: $(STAMP)
	$(PY) benchmarks/sweep_decoding.py --seed $(SEED) --beams 20 \
		--semantic-dir $(call seed_ids,$(SEED)) --second-tiger \
		$(call COLLAB_CKPT,paper) --second-semantic-dir $(COLLAB) \
		--out results/decoding_sweep_ensemble_seed$(SEED).json --check-against \
		$(SEQ)_paper_tiger_seed$(SEED).json $(SEQ)_paper_tiger_collab_seed$(SEED).json

# Not part of `all`: the same on the seed's holdout checkpoints of both ID sets, each weight the
# one the paper ensemble sweep of seed W_SEED chose (every seed's chose the same filtered
# weights); about 5 minutes.
W_SEED ?= 0
ensemble-sweep-holdout: $(STAMP)
	$(PY) benchmarks/sweep_decoding.py --seed $(SEED) --beams 20 --protocol holdout \
		--semantic-dir $(call seed_ids,$(SEED)) --second-tiger \
		$(call COLLAB_CKPT,holdout) --second-semantic-dir $(COLLAB) \
		--weights-from results/decoding_sweep_ensemble_seed$(W_SEED).json \
		--out results/decoding_sweep_ensemble_holdout_seed$(SEED).json --check-against \
		$(SEQ)_holdout_tiger_seed$(SEED).json $(SEQ)_holdout_tiger_collab_seed$(SEED).json \
		$(SEQ)_holdout_ids_seed$(SEED).json

# Not part of `all`: the SASRec sweep behind the tuned baseline (validation only), two processes.
sweep-sasrec: $(STAMP)
	$(PY) benchmarks/sweep_sasrec.py --data-dir beauty --quiet \
		--variants tuned dropout_0.2 dim_64 full_softmax history_20 & a=$$!; \
	$(PY) benchmarks/sweep_sasrec.py --data-dir beauty --quiet \
		--variants dropout_0.5 negatives_256 negatives_1024 blocks_2 lr_2e-3 issue_probe old_default & b=$$!; \
	wait $$a && wait $$b

# Not part of `all`: the full cross-entropy SASRec chosen on the `paper` ranking's own validation
# (the fair fight's per-protocol tuning; validation only), two processes.
sweep-sasrec-paper: $(STAMP)
	$(PY) benchmarks/sweep_sasrec.py --data-dir beauty --quiet --monitor ndcg@10 \
		--out results/sasrec_sweep_paper.json \
		--variants ce_d128_b2_do0.5 ce_d64_b2_do0.5 full_softmax & a=$$!; \
	$(PY) benchmarks/sweep_sasrec.py --data-dir beauty --quiet --monitor ndcg@10 \
		--out results/sasrec_sweep_paper.json \
		--variants ce_genrec ce_d256_b2_do0.5 ce_d128_b2_do0.3 & b=$$!; \
	wait $$a && wait $$b

# A five-minute tour on MovieLens-100K (fresh data preparation included), into runs/demo/ only:
# semantic IDs, then item-level TIGER (1 epoch) on one core while SASRec, the baselines, the
# analysis, MF and DeepFM run on the other; a line per stage with the time, then who won each task.
# Short schedules: a demonstration of the pipeline, not the study's numbers (demo.py --help).
DEMO ?= runs/demo
demo: $(STAMP)
	@$(PY) demo.py --run-dir $(DEMO)

summary: $(STAMP)
	$(PY) summarize_results.py

# Recompute every headline metric from the saved predictions; fails on any mismatch. The files the
# main job (`make all`) has just written must be checked; the other committed results files are
# checked where their predictions are here, else listed with the command that writes them
# (predictions are git-ignored). `summarize_results.py --verify` alone fails on any of those.
MAIN_RESULTS = results/mf_results_ml-100k.json results/mf_results_beauty.json \
	results/neural_results_ml-100k.json results/neural_results_beauty.json \
	$(SEQ)_paper_tiger_seed$(SEED).json $(SEQ)_paper_ids_seed$(SEED).json
verify: $(STAMP)
	$(PY) summarize_results.py --verify --allow-missing --require $(MAIN_RESULTS)

# The headline numbers that differ from the committed results files (git's copy): what this
# machine's run moved. `git checkout results plots` puts the committed ones back.
compare-committed: $(STAMP)
	$(PY) summarize_results.py --compare-committed

# Not part of `all` (~1.5 h here): semantic IDs from RQ-KMeans vs RQ-VAE vs random codes on the same
# downstream models (TIGER quick, one seed; MF-Semantic and DeepFM-semantic, 3 seeds) on Beauty.
# RQ-KMeans TIGER runs are the main job's (make tiger tiger-seeds).
QRUN = results/quantizers
quantizers: $(STAMP)
	$(PY) semantic_id_generator.py --data-dir beauty --quantizer rqvae --reseed-dead-codes \
		--semantic-dir beauty/ids-rqvae --seed $(SEED) --quiet
	$(PY) semantic_id_generator.py --data-dir beauty --quantizer random --semantic-dir beauty/ids-random \
		--seed $(SEED) --quiet
	pids=; for q in rqvae random; do \
		$(PY) tiger_train_eval.py --data-dir beauty --preset quick --models tiger_item --seed $(SEED) --quiet \
			--semantic-dir beauty/ids-$$q --reference --out $(QRUN)/tiger_$$q.json --plot-dir checkpoints/plots-$$q & \
		pids="$$pids $$!"; \
	done; for p in $$pids; do wait $$p || exit 1; done
	for q in rqkmeans rqvae random; do \
		dir=beauty; [ $$q = rqkmeans ] || dir=beauty/ids-$$q; \
		$(PY) mf_train_eval.py --data-dir beauty --models mf_semantic --seeds 0 1 2 --quiet --semantic-dir $$dir \
			--reference --out $(QRUN)/mf_$$q.json --plot-dir checkpoints/plots-$$q || exit 1; \
		$(PY) neural_train_eval.py --data-dir beauty --models deepfm --modes semantic --seeds 0 1 2 --quiet \
			--semantic-dir $$dir --reference --out $(QRUN)/ctr_$$q.json --plot-dir checkpoints/plots-$$q || exit 1; \
	done
	$(PY) benchmarks/compare_quantizers.py

# Speed and peer-baseline benchmarks (not part of `all`; bench_semantic_ids takes ~20 min, mostly the reference KMeans).
bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_mf.py
	$(PY) benchmarks/bench_ctr.py
	$(PY) benchmarks/bench_tiger.py
	$(PY) benchmarks/bench_semantic_ids.py --data-dir beauty
	$(PY) benchmarks/bench_scaling.py

clean:
	rm -rf $(VENV) .pytest_cache
