# Two commands do everything on a fresh clone:
#   make all    set up the environment and run the whole main job (data -> semantic IDs -> models -> results/ and plots/)
#   make test   set up the environment and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: all test lint setup data semantic-ids analysis mf neural tiger tiger-seeds tiger-long quantizers summary verify bench clean

all: data semantic-ids analysis mf neural tiger summary verify
	@echo "done: results in results/, plots in plots/"

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: lint
	PYTHONDONTWRITEBYTECODE=1 $(PY) -m pytest -q

# ruff (pinned in requirements.txt, configured in pyproject.toml): lint and formatting.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

data: $(STAMP)
	$(PY) prepare_data.py --dataset beauty
	$(PY) prepare_data.py --dataset ml-100k

semantic-ids: $(STAMP)
	$(PY) semantic_id_generator.py --data-dir beauty --seed $(SEED)
	$(PY) semantic_id_generator.py --data-dir data/ml-100k --seed $(SEED)

analysis: $(STAMP)
	$(PY) analyze_semantic_ids.py --data-dir beauty
	$(PY) analyze_semantic_ids.py --data-dir data/ml-100k

mf: $(STAMP)
	$(PY) mf_train_eval.py --data-dir data/ml-100k --seeds 0 1 2 --save-predictions
	$(PY) mf_train_eval.py --data-dir beauty --seeds 0 1 2 --save-predictions

neural: $(STAMP)
	$(PY) neural_train_eval.py --data-dir data/ml-100k --seeds 0 1 2 --save-predictions
	$(PY) neural_train_eval.py --data-dir beauty --seeds 0 1 2 --save-predictions

tiger: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed $(SEED) --save-predictions

# Not part of `all`: seeds 1 and 2 of the quick preset (one core each, ~40 min side by side), for the
# README's mean ± std table, and the paper's token-level encoder trained longer (hours on this CPU).
tiger-seeds: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed 1 --quiet --save-predictions \
		--out results/tiger_results_seed1.json --plot-dir checkpoints/plots-seed1 & one=$$!; \
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed 2 --quiet --save-predictions \
		--out results/tiger_results_seed2.json --plot-dir checkpoints/plots-seed2 & two=$$!; \
	wait $$one && wait $$two

tiger-long: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset long --out results/tiger_results_token_long.json \
		--plot-dir checkpoints/plots-long

summary: $(STAMP)
	$(PY) summarize_results.py

# Recompute every headline metric from the saved predictions; fails on any mismatch.
verify: $(STAMP)
	$(PY) summarize_results.py --verify

# Not part of `all` (~1.5 h here): semantic IDs from RQ-KMeans vs RQ-VAE vs random codes on the same
# downstream models (TIGER quick, one seed; MF-Semantic and DeepFM-semantic, 3 seeds) on Beauty.
# RQ-KMeans TIGER runs are the main job's (make tiger tiger-seeds).
QRUN = results/quantizers
quantizers: $(STAMP)
	$(PY) semantic_id_generator.py --data-dir beauty --quantizer rqvae --reseed-dead-codes \
		--output-dir beauty/ids-rqvae --seed $(SEED) --quiet
	$(PY) semantic_id_generator.py --data-dir beauty --quantizer random --output-dir beauty/ids-random \
		--seed $(SEED) --quiet
	pids=; for q in rqvae random; do \
		$(PY) tiger_train_eval.py --data-dir beauty --preset quick --models tiger_item --seed $(SEED) --quiet \
			--semantic-dir beauty/ids-$$q --out $(QRUN)/tiger_$$q.json --plot-dir checkpoints/plots-$$q & \
		pids="$$pids $$!"; \
	done; for p in $$pids; do wait $$p || exit 1; done
	for q in rqkmeans rqvae random; do \
		dir=beauty; [ $$q = rqkmeans ] || dir=beauty/ids-$$q; \
		$(PY) mf_train_eval.py --data-dir beauty --models mf_semantic --seeds 0 1 2 --quiet --semantic-dir $$dir \
			--out $(QRUN)/mf_$$q.json --plot-dir checkpoints/plots-$$q || exit 1; \
		$(PY) neural_train_eval.py --data-dir beauty --models deepfm --modes semantic --seeds 0 1 2 --quiet \
			--semantic-dir $$dir --out $(QRUN)/ctr_$$q.json --plot-dir checkpoints/plots-$$q || exit 1; \
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
