#!/usr/bin/env bash
# install-deps.sh: make a fresh Debian 12 machine ready to build and test
# kvmgate. Idempotent: it installs only what is missing, so a second run is
# quick and touches nothing. Run as root (or with sudo available).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the build and the integration tests need. The real-server
# tests fail (they never skip) when one of these is missing.
DEBIAN_PACKAGES=(
	tigervnc-standalone-server tigervnc-tools x11vnc xvfb
	qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio
	xterm x11-apps x11-utils x11-xserver-utils
	chromium fonts-dejavu-core socat ca-certificates git
	websockify tigervnc-viewer
	spice-client-gtk spice-html5 spice-vdagent xclip xdotool
	libvpx-dev libopenh264-dev
	iproute2
)

# staticcheck release used by scripts/test.sh (2026.2.2; needs Go >= 1.26).
STATICCHECK_VERSION=v0.8.2

# Directories whose package.json dependencies are installed with `npm ci`.
# Directories without a package.json are skipped, so listing one early is
# harmless.
NPM_DIRS=(client test test/novnc)

log() { printf 'install-deps: %s\n' "$*" >&2; }

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		log "need root to run: $*"
		return 1
	fi
}

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [[ $status != installed ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	log "installing Debian packages: ${missing[*]}"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
else
	log "Debian packages: all ${#DEBIAN_PACKAGES[@]} present"
fi

# --- Go --------------------------------------------------------------------
if [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
	log "Go is not installed: install Go >= 1.26 into /usr/local/go (https://go.dev/dl/) and rerun"
	exit 1
fi
gobin=$(go env GOBIN)
[[ -n $gobin ]] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
log "$(go version)"

# --- staticcheck -----------------------------------------------------------
if [[ -x $gobin/staticcheck ]] &&
	"$gobin/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
	log "staticcheck ${STATICCHECK_VERSION}: present"
else
	log "installing staticcheck ${STATICCHECK_VERSION} into $gobin"
	go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

# --- npm (JS client and browser tests) ------------------------------------
# Add directories to NPM_DIRS above; each one with a package.json gets a
# clean `npm ci` from its package-lock.json.
for d in "${NPM_DIRS[@]}"; do
	if [[ -f $d/package.json ]]; then
		if ! command -v npm >/dev/null; then
			log "$d/package.json needs npm: installing the Debian package npm"
			as_root apt-get update
			as_root env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y --no-install-recommends npm
		fi
		stamp=$d/node_modules/.package-lock.json
		if [[ -f $stamp && $stamp -nt $d/package.json &&
			(! -f $d/package-lock.json || $stamp -nt $d/package-lock.json) ]]; then
			log "npm ($d): node_modules up to date"
		else
			log "npm ci in $d"
			(cd "$d" && npm ci --no-audit --no-fund)
		fi
	fi
done

log "ok"
