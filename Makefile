# berth — build, test, run, bench. Everything a fresh Debian machine needs is
# installed by scripts/install-deps.sh (called by the targets that need it).

GO        ?= go
BIN       := bin
DATA      ?= $(CURDIR)/.run
# runc gets seccomp when libseccomp (pkg-config) is there; deps installs it.
# The rest is how runc's own release binaries are built (`make static`):
# no urfave/cli docs generator, static, trimmed paths. A static runc starts
# ~10 ms sooner per container (it runs twice per start: runc and runc init),
# mostly dynamic linking and the docs generator's package init.
RUNC_TAGS  = $(shell pkg-config --exists libseccomp 2>/dev/null && echo seccomp) urfave_cli_no_docs netgo osusergo
RUNC_FLAGS = -trimpath -ldflags "-extldflags -static"

export CGO_ENABLED := 1
# A go.work left in a parent directory (say /tmp) must not change what
# this module builds.
export GOWORK := off

.PHONY: all build deps test run stop bench clean FORCE

all: build

deps:
	@scripts/install-deps.sh

build: deps $(BIN)/berthd $(BIN)/berth-shim $(BIN)/berth $(BIN)/runc $(BIN)/berth-fixtures

$(BIN)/berthd $(BIN)/berth-shim $(BIN)/berth $(BIN)/berth-fixtures: FORCE
	$(GO) build -o $@ ./cmd/$(notdir $@)

# runc is built from the module pinned in go.mod (tool directive), never
# from the distribution's package.
$(BIN)/runc: go.mod go.sum
	$(GO) build $(RUNC_FLAGS) -tags "$(RUNC_TAGS)" -o $@ github.com/opencontainers/runc
	@$@ --version | head -1

test: build
	$(GO) vet ./...
	BERTH_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m ./...

run: build
	@scripts/run.sh start "$(DATA)"

stop:
	@scripts/run.sh stop "$(DATA)"

bench: build
	@scripts/install-deps.sh bench
	BERTH_BIN=$(CURDIR)/$(BIN) $(GO) run ./cmd/berth-bench -out BENCHMARKS.md

clean:
	rm -rf $(BIN)

FORCE:
