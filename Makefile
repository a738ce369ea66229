# FlashMem — the README's two commands are `make example` and `make test`.
SHELL := /bin/bash
PYTHON ?= .venv/bin/python
CORPUS ?= corpus
BIN := .build/release
# Model-test cases: corpus model names, or a variant of one (Tests/Models/run_model_tests.py's VARIANTS).
MODELS ?= resnet50 mobilenet_v3_large minilm_l6_v2 ppocrv4_det silero_vad silero_vad_dynamic_sr
CORPUS_MODELS = $(sort $(patsubst %_dynamic_sr,%,$(MODELS)))

.PHONY: setup build install example examples quickstart c-api-examples test unit-tests docs conformance model-tests compile-memory corpus paper-models shaders clean sanitize sanitize-asan sanitize-tsan sanitize-ci validation

setup:
	bash .ci/install.sh

build:
	swift build -c release --product fmc
	swift build -c release --product fmrun
	swift build -c release --product sentence-similarity
	swift build -c release --product detect-text
	swift build -c release --product read-text

# Compile the bundled CNN fixture, run it streaming and preloaded, check it against onnxruntime.
example: setup build
	bash Examples/run-example.sh $(BIN)

# Apps embedding the runtime, on trained corpus models, each result checked against onnxruntime: sentence-similarity
# (MiniLM, WordPiece in Swift), detect-text (PP-OCRv4 detector, boxes drawn into a page) and read-text (detector →
# direction classifier → recognizer under one budget; the latter two from the detector's rapidocr wheel). Part of `make test`.
examples: build
	$(MAKE) corpus MODELS="minilm_l6_v2 ppocrv4_det"
	PYTHON=$(PYTHON) bash Examples/run-examples.sh $(BIN) $(CORPUS)

# The README's "Quick start: your own model", block by block, on a small torch model exported in it (installs into a
# temporary prefix), and the messages fmc and fmrun give a newcomer for common mistakes. Part of `make test`.
quickstart: build
	PYTHON=$(PYTHON) bash Tests/QuickStart/run_quickstart.sh
	PYTHON=$(PYTHON) bash Tests/QuickStart/check_cli_messages.sh $(BIN)

# The C API (libflashmem.so, Runtime/FlashMemC/include/flashmem.h) from C and from Python ctypes, on the
# same fixture, checked against onnxruntime. Part of `make test`.
c-api-examples:
	swift build -c release --product fmc
	swift build -c release --product flashmem
	PYTHON=$(PYTHON) bash Examples/c-api/run-examples.sh $(BIN)
	$(PYTHON) Tests/CAPI/context_ctypes.py $(BIN)/libflashmem.so $(BIN)/fmc
	PYTHON=$(PYTHON) bash Examples/c-api/check-install.sh

# fmc and fmrun into PREFIX/bin, the C API's library, header and pkg-config file into PREFIX/lib, PREFIX/include
# and PREFIX/lib/pkgconfig. The library finds the Swift runtime where this toolchain keeps it (its RUNPATH).
PREFIX ?= /usr/local
install: build
	swift build -c release --product flashmem
	install -d $(PREFIX)/bin $(PREFIX)/lib/pkgconfig $(PREFIX)/include
	install -m 755 $(BIN)/fmc $(BIN)/fmrun $(PREFIX)/bin/
	install -m 755 $(BIN)/libflashmem.so $(PREFIX)/lib/
	install -m 644 Runtime/FlashMemC/include/flashmem.h $(PREFIX)/include/
	sed -e "s|@PREFIX@|$(PREFIX)|" -e "s|@VERSION@|$$($(BIN)/fmc --version)|" Runtime/FlashMemC/flashmem.pc.in \
	    > $(PREFIX)/lib/pkgconfig/flashmem.pc

# Unit, golden, per-op and fixture-model tests on lavapipe, the runtime's DocC documentation (on the same build:
# ~40 s), the sanitize subset again under the Khronos validation layer (on the same build: ~45 s), fmrun under ASan
# and TSan on the fixtures (sanitize-ci), the ONNX node-test subset, the corpus models, the C API's examples (C and
# Python ctypes), the apps of `make examples` and the README's quick start.
# Each step's time is printed after it ("make test: STEP took N s"), so a CI log shows where the time goes.
TEST_STEPS := setup unit-tests docs validation sanitize-ci conformance model-tests c-api-examples examples quickstart
test:
	@for step in $(TEST_STEPS); do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$step || { echo "make test: $$step FAILED after $$(( $$(date +%s) - start )) s"; exit 1; }; \
	  echo "make test: $$step took $$(( $$(date +%s) - start )) s"; \
	done

unit-tests:
	swift build --build-tests
	swift test --skip-build

# FlashMemRuntime's DocC documentation (Runtime/FlashMemRuntime/FlashMemRuntime.docc and the doc comments), by
# swift-docc-plugin; any DocC warning (an unresolved symbol link, …) fails it. The archive is written to
# .build/plugins/Swift-DocC/outputs/FlashMemRuntime.doccarchive.
docs:
	swift package --disable-sandbox generate-documentation --target FlashMemRuntime --warnings-as-errors

# Sanitizers and the Khronos validation layer (README "Tests"), on the runtime's session, streaming and fault tests
# and fmrun on the CNN fixture: AddressSanitizer (+ LeakSanitizer), ThreadSanitizer, then FLASHMEM_VALIDATION=1
# (the layer with synchronization validation; any error fails). Each sanitizer has its own build folder.
# The subset's two sanitizer builds take longer than CI can spare, so `make test` runs `validation` and `sanitize-ci`.
SANITIZE_CLASSES ?= SessionTests SessionChurnTests RuntimeFaultTests BundleFileTests BundleIntegrityTests RuntimeIfTests \
    IndexCheckTests FMRunTests ValidationLayerTests WeightSplitTests AppAPITests
empty :=
comma := ,
# XCTest's own selection (the test binary is run directly, so LD_PRELOAD below reaches it and not SwiftPM's tools).
SANITIZE_SELECT := $(subst $(empty) $(empty),$(comma),$(addprefix FlashMemRuntimeTests.,$(SANITIZE_CLASSES)))
SANITIZE_SUPP := $(CURDIR)/Tests/Sanitizers
# LeakSanitizer runs at exit, after the Vulkan loader has unloaded lavapipe (fmrun destroys its instance): preloading
# the driver keeps it mapped, so its blocks stay reachable from its globals and its frames keep their names.
LVP_PRELOAD := $(firstword $(wildcard /usr/lib/*/libvulkan_lvp.so))
ASAN_ENV := LD_PRELOAD=$(LVP_PRELOAD) LSAN_OPTIONS=suppressions=$(SANITIZE_SUPP)/lsan.supp
TSAN_ENV := TSAN_OPTIONS=suppressions=$(SANITIZE_SUPP)/tsan.supp
sanitize: sanitize-asan sanitize-tsan validation

sanitize-asan:
	swift build --build-tests --scratch-path .build-asan --sanitize=address
	$(ASAN_ENV) .build-asan/debug/FlashMemPackageTests.xctest '$(SANITIZE_SELECT)'
	$(ASAN_ENV) bash Tests/Sanitizers/run-fixture.sh .build-asan/debug

sanitize-tsan:
	swift build --build-tests --scratch-path .build-tsan --sanitize=thread
	$(TSAN_ENV) .build-tsan/debug/FlashMemPackageTests.xctest '$(SANITIZE_SELECT)'
	$(TSAN_ENV) bash Tests/Sanitizers/run-fixture.sh .build-tsan/debug

# Part of `make test`: fmrun alone (the runtime without the compiler, so its builds are short) under ASan/LSan and
# under TSan on run-fixture.sh — streamed, preloaded, and two models chained under one budget with cross-model
# prefetch on a second thread — with bundles from the plain debug fmc.
sanitize-ci:
	swift build --product fmc
	swift build --product fmrun --scratch-path .build-asan --sanitize=address
	$(ASAN_ENV) bash Tests/Sanitizers/run-fixture.sh .build-asan/debug .build/debug
	swift build --product fmrun --scratch-path .build-tsan --sanitize=thread
	$(TSAN_ENV) bash Tests/Sanitizers/run-fixture.sh .build-tsan/debug .build/debug

# The validation layer on the plain debug build (the one `make unit-tests` makes).
validation:
	swift build --build-tests
	FLASHMEM_VALIDATION=1 .build/debug/FlashMemPackageTests.xctest '$(SANITIZE_SELECT)'
	FLASHMEM_VALIDATION=1 bash Tests/Sanitizers/run-fixture.sh .build/debug

# The CI subset of the ONNX backend node tests (Tests/Conformance/README.md has the full run).
conformance:
	swift build --product fmc-conformance
	PYTHON=$(PYTHON) FMC_CONFORMANCE=.build/debug/fmc-conformance bash Tests/Conformance/run_subset.sh $(CORPUS)/node-tests-subset

corpus:
	@for m in $(CORPUS_MODELS); do \
	  [ -f $(CORPUS)/$$m.onnx ] || $(PYTHON) ../shared/corpus/make_corpus.py --out $(CORPUS) --only $$m --no-bench; \
	done

model-tests: build corpus compile-memory
	$(PYTHON) Tests/Models/run_model_tests.py --bin $(BIN) --corpus $(CORPUS) --models $(MODELS) --log $(CORPUS)/model-tests.log

# The FlashMem paper's models that are not large (make_corpus.py --paper, 8 of the 11), fp32 on lavapipe, streaming and
# --preload against onnxruntime, compiled for --target lavapipe (attention scores past its 128 MiB storage buffers
# fused). Opt-in, not part of `make test`. depth_anything_l and sam2 need storage buffers larger
# than lavapipe's 128 MiB: they compile but are reported as failing to run there (README); whisper_medium runs, each
# fmrun for over 10 minutes on two cores (hence the wait timeout).
PAPER_CORPUS ?= $(CORPUS)/paper
PAPER_MODELS ?= resnet50 gpt_neo_125m vit_1024_12 deepvit depth_anything_s depth_anything_l whisper_medium sam2
paper-models: build
	@for m in $(PAPER_MODELS); do \
	  [ -f $(PAPER_CORPUS)/$$m.onnx ] || $(PYTHON) ../shared/corpus/make_corpus.py --out $(PAPER_CORPUS) --only $$m --no-bench; \
	done
	time $(PYTHON) Tests/Models/run_model_tests.py --bin $(BIN) --corpus $(PAPER_CORPUS) --models $(PAPER_MODELS) \
	    --precisions fp32 --budgets --target lavapipe --wait-timeout 7200 --log $(PAPER_CORPUS)/paper-model-tests.log

# fmc compile's peak RSS within 1 GiB + 2 × the largest tensor, on a generated 1.25 GiB model (inline and external).
compile-memory: build
	$(PYTHON) Tests/Models/check_compile_memory.py --bin $(BIN)

# Regenerate the Swift file that embeds Shaders/ into fmc (a unit test fails when it is stale).
shaders:
	python3 Shaders/embed.py

clean:
	rm -rf .build
