# ovsmesh Makefile. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION ?= 0.1.0
IMG_REGISTRY ?= ghcr.io/ovsmesh
OPERATOR_IMG ?= $(IMG_REGISTRY)/ovsmesh-operator:v$(VERSION)
AGENT_IMG ?= $(IMG_REGISTRY)/ovsmesh-agent:v$(VERSION)
BUNDLE_IMG ?= $(IMG_REGISTRY)/ovsmesh-bundle:v$(VERSION)

CONTROLLER_GEN := go tool controller-gen
ASSETS = $(shell hack/testbed.sh assets-dir)
KUBECTL = $(ASSETS)/kubectl

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code and the OVSDB models.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths="./api/..."
	go generate ./ovs/...

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) crd rbac:roleName=manager-role paths="./api/...;./controllers/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: verify-generated
verify-generated: generate manifests bundle ## Fail when committed generated files are stale.
	@if [ -n "$$(git status --porcelain -- api config ovs/model bundle bundle.Dockerfile)" ]; then \
		echo "generated files are stale; run 'make generate manifests bundle' and commit:"; \
		git status --porcelain -- api config ovs/model bundle bundle.Dockerfile; git --no-pager diff --stat -- api config ovs/model bundle bundle.Dockerfile; exit 1; fi

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: build
build: ## Build all binaries into bin/.
	CGO_ENABLED=0 go build -o bin/ ./cmd/...

##@ Test bed and tests

.PHONY: testbed
testbed: ## Install Debian packages; build the control plane and the node binaries (kubelet, kube-scheduler, kube-proxy, containerd) into the cache.
	hack/testbed.sh

.PHONY: assets-dir
assets-dir: ## Print the KUBEBUILDER_ASSETS directory (control-plane binaries).
	@hack/testbed.sh assets-dir

.PHONY: test
test: testbed ## The test command: set up the test bed, check generated files and formatting, vet, and run every test (real components).
	$(MAKE) verify-generated
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	KUBEBUILDER_ASSETS="$(ASSETS)" go test -count=1 -p 1 -timeout 45m ./...

##@ Demo

DEMO_ARGS ?=
.PHONY: demo
demo: testbed ## The main job: ovsmesh installed on a local 3-node Kubernetes cluster (real kubelets, containerd, kube-proxy); Ctrl-C tears down. DEMO_ARGS=--once to check and exit.
	go build -o bin/ovsmesh-demo ./cmd/ovsmesh-demo
	KUBEBUILDER_ASSETS="$(ASSETS)" bin/ovsmesh-demo $(DEMO_ARGS)

##@ Deployment

.PHONY: kustomize-render
kustomize-render: ## Render config/default with kubectl kustomize.
	$(KUBECTL) kustomize config/default

##@ Bundle and images

CONTAINER_TOOL ?= docker

.PHONY: bundle
bundle: manifests ## Generate the OLM bundle (bundle/, bundle.Dockerfile) from config/manifests with hack/bundlegen.
	go run ./hack/bundlegen -config config/manifests -out bundle -dockerfile bundle.Dockerfile

.PHONY: bundle-build
bundle-build: bundle ## Build the bundle image $(BUNDLE_IMG) (needs a container engine; none runs on the build machine).
	$(CONTAINER_TOOL) build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: images
images: ## Build the operator, agent and test-pod images as OCI archives in bin/images (no container engine: go-containerregistry).
	go run ./hack/images -out bin/images -tags v$(VERSION)

.PHONY: docker-build
docker-build: ## Build the operator and agent images $(OPERATOR_IMG), $(AGENT_IMG) (needs a container engine).
	$(CONTAINER_TOOL) build -f Dockerfile.operator -t $(OPERATOR_IMG) .
	$(CONTAINER_TOOL) build -f Dockerfile.agent -t $(AGENT_IMG) .

##@ Benchmarks

BENCH_ARGS ?=
.PHONY: bench
bench: testbed ## Run every benchmark at full size (~60 min; see BENCHMARKS.md). BENCH_ARGS="-only ovs,cni" to pick.
	go build -o bin/ovsmesh-bench ./bench/cmd/ovsmesh-bench
	KUBEBUILDER_ASSETS="$(ASSETS)" bin/ovsmesh-bench -json bin/bench-results.json $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: testbed ## Run every benchmark at a small size (also part of `make test`).
	KUBEBUILDER_ASSETS="$(ASSETS)" go test -count=1 -v -run TestSmoke ./bench/
