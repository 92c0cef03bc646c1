# Two commands do everything on a fresh clone:
#   make all    set up the environment and run the whole main job (data -> semantic IDs -> models -> results/ and plots/)
#   make test   set up the environment and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SEED   ?= 0

.PHONY: all test setup data semantic-ids analysis mf neural tiger summary bench clean

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
	$(PY) tiger_train_eval.py --data-dir beauty --preset quick

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
