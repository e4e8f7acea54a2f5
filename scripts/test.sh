#!/usr/bin/env bash
# test.sh: the one command that checks kvmgate. It installs what is missing
# (scripts/install-deps.sh), then runs the formatting check, go vet,
# staticcheck, the build, the whole test suite (real servers included) and
# the race detector on the packages where it is cheap. It prints a summary and
# exits non-zero if any step failed. Works from any directory.
#
#   scripts/test.sh                 check everything (what CI runs)
#   scripts/test.sh ./rfb/... ./x   check only these packages (no race step
#                                   for packages outside RACE_PACKAGES)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Packages also tested with -race (cheap ones; the real-server suites are
# too slow under the race detector on small machines).
RACE_PACKAGES=(./framebuffer/... ./server/... ./session/... ./encoders/... ./input/...)

# Build tags that compile in the optional C codecs (Debian libvpx-dev and
# libopenh264-dev, installed by install-deps.sh) so the video tests run too.
# The plain build without them is checked by the build-nocgo step.
GO_TAGS=libvpx,openh264

# Timeout for the whole `go test ./...` run.
TEST_TIMEOUT=25m

# Packages to check: the arguments, or the whole module.
if (($#)); then
	PACKAGES=("$@")
else
	PACKAGES=(./...)
fi

if ! ./scripts/install-deps.sh; then
	echo "test.sh: install-deps.sh failed" >&2
	exit 1
fi
export PATH="/usr/local/go/bin:$(go env GOPATH)/bin:$PATH"
gobin=$(go env GOBIN)
[[ -n $gobin ]] && export PATH="$gobin:$PATH"

declare -a results=()
failed=0

# step NAME CMD...: run one check, record its outcome and duration.
step() {
	local name=$1
	shift
	printf '\n=== %s: %s\n' "$name" "$*"
	local start=$SECONDS
	if "$@"; then
		results+=("PASS  $name ($((SECONDS - start))s)")
	else
		results+=("FAIL  $name ($((SECONDS - start))s)")
		failed=1
	fi
}

gofmt_check() {
	local files
	files=$(git ls-files -co --exclude-standard -- '*.go' | xargs -r gofmt -l)
	if [[ -n $files ]]; then
		echo "gofmt: these files need formatting (run gofmt -w):"
		sed 's/^/  /' <<<"$files"
		return 1
	fi
}

# race_packages prints the entries of RACE_PACKAGES that exist.
race_packages() {
	local p
	for p in "${RACE_PACKAGES[@]}"; do
		[[ -d ${p%/...} ]] || continue
		# With explicit packages, race-test only those asked for.
		if [[ ${PACKAGES[*]} != ./... ]] && ! printf '%s\n' "${PACKAGES[@]}" | grep -qxF -- "$p"; then
			continue
		fi
		printf '%s\n' "$p"
	done
}

race_test() {
	local pkgs
	mapfile -t pkgs < <(race_packages)
	if ((${#pkgs[@]} == 0)); then
		echo "no race packages present"
		return 0
	fi
	go test -tags "$GO_TAGS" -count=1 -race -timeout "$TEST_TIMEOUT" "${pkgs[@]}"
}

# go_test runs the whole suite and keeps its output for the summary.
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
go_test() {
	go test -tags "$GO_TAGS" -count=1 -timeout "$TEST_TIMEOUT" "${PACKAGES[@]}" 2>&1 | tee "$test_log"
}

step gofmt gofmt_check
step vet go vet -tags "$GO_TAGS" "${PACKAGES[@]}"
step staticcheck staticcheck -tags "$GO_TAGS" "${PACKAGES[@]}"
step build go build -tags "$GO_TAGS" "${PACKAGES[@]}"
step build-nocgo env CGO_ENABLED=0 go build "${PACKAGES[@]}"
step test go_test
step race race_test

printf '\n=== summary\n'
printf '%s\n' "${results[@]}"
if grep -q '^FAIL[[:space:]]' "$test_log"; then
	printf 'failed packages:\n'
	grep '^FAIL[[:space:]]' "$test_log" | sed 's/^/  /'
fi
if ((failed)); then
	printf 'test.sh: FAILED\n'
	exit 1
fi
printf 'test.sh: all checks passed\n'
