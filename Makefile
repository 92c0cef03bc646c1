# Two commands do everything on a fresh clone:
#   make all    set up the environment and run the whole main job (data -> semantic IDs -> models -> results/ and plots/)
#   make test   set up the environment and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: all test setup data semantic-ids analysis mf neural tiger tiger-seeds tiger-long summary bench clean

all: data semantic-ids analysis mf neural tiger summary
	@echo "done: results in results/, plots in plots/"

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

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
	$(PY) mf_train_eval.py --data-dir data/ml-100k --seeds 0 1 2
	$(PY) mf_train_eval.py --data-dir beauty --seeds 0 1 2

neural: $(STAMP)
	$(PY) neural_train_eval.py --data-dir data/ml-100k
	$(PY) neural_train_eval.py --data-dir beauty

tiger: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed $(SEED)

# Not part of `all`: seeds 1 and 2 of the quick preset (one core each, ~40 min side by side), for the
# README's mean ± std table, and the paper's token-level encoder trained longer (hours on this CPU).
tiger-seeds: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed 1 --quiet \
		--out results/tiger_results_seed1.json --plot-dir checkpoints/plots-seed1 & one=$$!; \
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick --seed 2 --quiet \
		--out results/tiger_results_seed2.json --plot-dir checkpoints/plots-seed2 & two=$$!; \
	wait $$one && wait $$two

tiger-long: $(STAMP)
	$(PY) tiger_train_eval.py --data-dir beauty --preset long --out results/tiger_results_token_long.json \
		--plot-dir checkpoints/plots-long

summary: $(STAMP)
	$(PY) summarize_results.py

# Speed and peer-baseline benchmarks (not part of `all`; bench_semantic_ids takes ~20 min, mostly the reference KMeans).
bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_mf.py
	$(PY) benchmarks/bench_ctr.py
	$(PY) benchmarks/bench_tiger.py
	$(PY) benchmarks/bench_semantic_ids.py --data-dir beauty

clean:
	rm -rf $(VENV) .pytest_cache
