#!/usr/bin/env bash
# `meson install` into a DESTDIR installs libgreen, libgreen-preload.so, the
# headers, greenrun, greenbench and green.pc; a program builds against it
# with pkg-config, and the installed greenrun finds the installed shim.
# Usage: test_install.sh BUILD_DIR   (run by meson test)
set -euo pipefail
build=$1
dest=$(mktemp -d /tmp/green-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name green.pc)
[ -n "$pc" ] || fail "green.pc not installed"
for f in greenrun greenbench libgreen.so libgreen-preload.so green.hpp fiber.hpp; do
  [ -n "$(find "$dest" -name "$f")" ] || fail "$f not installed"
done

# DESTDIR: pkg-config prefixes its paths with the sysroot.
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
libs=$(pkg-config --libs green)
[[ $libs == *-lgreen* ]] || fail "pkg-config --libs green: '$libs'"
cat > "$dest/tiny.cpp" <<'CPP'
#include <green/green.hpp>
int main() {
    return green::run([] {
        green::Channel<int> ch(4);
        auto t = green::spawn([&] { for (int i = 1; i <= 3; ++i) ch.send(i); ch.close(); });
        int sum = 0;
        while (auto v = ch.recv()) sum += *v;
        t.join();
        return sum == 6 ? 0 : 1;
    });
}
CPP
${CXX:-c++} -std=c++20 "$dest/tiny.cpp" $(pkg-config --cflags --libs green) -o "$dest/tiny"
libdir=$(dirname "$(dirname "$pc")")
LD_LIBRARY_PATH=$libdir "$dest/tiny" || fail "program built against the installed green failed"

greenrun=$(find "$dest" -name greenrun -type f)
out=$("$greenrun" --check -- /bin/true) || fail "installed greenrun --check: $out"
[[ $out == *"shim:    $libdir/libgreen-preload.so"* ]] || fail "installed greenrun did not pick the installed shim: $out"
err=$("$greenrun" --stats -- /bin/true 2>&1 >/dev/null)
[[ $err == *"green: shim active"* ]] || fail "installed greenrun did not load the shim: $err"
"$(find "$dest" -name greenbench -type f)" --version >/dev/null || fail "installed greenbench does not run"
echo "install: ok ($libs)"
