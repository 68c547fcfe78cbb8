# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed-stamp
SYNTH_PKGS := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fortunes
SYNTH_N    ?= 300
SYNTH_JOBS ?= 2

.PHONY: install synth-deps eval-deps corpus test lint demo bench clean

GEN_SO := vqconvert/_wavenet_gen.so

install: $(STAMP) $(GEN_SO)

# torch goes in first, pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The fast CPU generator (gcc -O3 -march=native); without gcc, generation falls back to torch.
$(GEN_SO): vqconvert/csrc/wavenet_gen.c $(STAMP)
	$(BIN)/python -m vqconvert.generate.clib --build || echo "warning: C generator not built; generation will use torch" >&2

# Debian's speech synthesizers and the `fortunes` text for the synthetic corpus (root installs them;
# others get the command to run).
synth-deps:
	@missing=""; for p in $(SYNTH_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "synthesizers present"; \
	elif [ "$$(id -u)" = 0 ]; then echo "installing:$$missing" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "missing Debian packages:$$missing (run: sudo apt-get update && sudo apt-get install$$missing)" >&2; fi

# Judges for `vqconvert evaluate` (resemblyzer, pocketsphinx, jiwer, pystoi, pesq; all offline), and
# Debian's pocketsphinx-testdata (real speech with transcripts for bench/real_speech.py; root installs
# it, others get the command; its absence never fails a target: the tests that need it skip).
EVAL_STAMP := $(VENV)/.eval-stamp
EVAL_PKGS  := pocketsphinx-testdata
eval-deps: $(EVAL_STAMP)
	@missing=""; for p in $(EVAL_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "real-speech test data present"; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get: real-speech test data ($$missing) not installed" >&2; \
	elif [ "$$(id -u)" = 0 ]; then echo "installing:$$missing" >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	  || echo "warning: could not install$$missing; bench/real_speech.py and its tests will skip" >&2; \
	else echo "missing Debian packages:$$missing (run: sudo apt-get update && sudo apt-get install$$missing)" >&2; fi
$(EVAL_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[eval]'
	touch $(EVAL_STAMP)

corpus: install synth-deps
	$(BIN)/vqconvert corpus synth corpus/synth --utterances $(SYNTH_N) --jobs $(SYNTH_JOBS)

test: install synth-deps eval-deps
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check vqconvert tests bench

demo: install
	$(BIN)/vqconvert transfer data/samples/demo.wav --speaker flite-slt --speaker espeak-en-us-m3 --out-dir out/demo --force
	$(BIN)/vqconvert transfer data/samples/demo.wav --speaker flite-slt --speaker espeak-en-us-m3 --out-dir out/demo/griffin-lim --vocoder griffin-lim --force
	@echo "converted data/samples/demo.wav (voice flite-awb) to two other voices (WaveNet; Griffin-Lim from the mel net):"; ls -1 out/demo/*.wav out/demo/griffin-lim/*.wav | sed 's/^/  /'

bench: install
	$(BIN)/python bench/generate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(GEN_SO)
