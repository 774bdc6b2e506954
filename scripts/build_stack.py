"""Builds the stack's two Go programs from their pinned sources, once per version, into the user's cache directory.

- the OpenTelemetry Collector of `stack/otelcol/builder.yaml` (the components of `collector-config.yaml` and its
  overlays, at one release), with the collector's own builder `ocb` at that release;
- Jaeger v2 (`github.com/jaegertracing/jaeger/cmd/jaeger`) from the module of `stack/jaeger/` (go.mod + go.sum).

Each binary lands in `$XDG_CACHE_HOME/claude-otel/stack/<name>-<version>-<key>/` (`~/.cache/...` by default), where
`<key>` is a hash of its pinned inputs and of the Go toolchain: a changed pin or Go builds anew, anything else
reuses the binary. A lock file serialises concurrent builds (two test runs); a build goes to a temporary directory
and is renamed into place whole, so an interrupted build leaves nothing that looks finished.

    python scripts/build_stack.py      # builds what is missing; prints `name version path` for each

The tests (`tests/stack.py`) call `binaries()`; `scripts/test` runs this first, so the build's time is not a test's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OTELCOL_MANIFEST = ROOT / "stack" / "otelcol" / "builder.yaml"
JAEGER_MODULE = ROOT / "stack" / "jaeger"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"


class BuildError(RuntimeError):
    """A build failed, or Go is missing: the message says which and what to do."""


@dataclass(frozen=True)
class Binary:
    name: str
    version: str
    path: Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "claude-otel" / "stack"


def otelcol_version() -> str:
    """The release of every collector module: the manifest's `dist.version`."""
    match = re.search(r"^\s+version:\s*(\S+)", OTELCOL_MANIFEST.read_text(), re.MULTILINE)
    if match is None:
        raise BuildError(f"{OTELCOL_MANIFEST} has no dist.version")
    return match.group(1)


def jaeger_version() -> str:
    """Jaeger's release: module tag v1.N.x is Jaeger 2.(N-63).x (v1.76.0 is 2.13.0)."""
    match = re.search(r"^\s*github\.com/jaegertracing/jaeger v1\.(\d+)\.(\d+)\b", (JAEGER_MODULE / "go.mod").read_text(), re.MULTILINE)
    if match is None:
        raise BuildError(f"{JAEGER_MODULE / 'go.mod'} does not require github.com/jaegertracing/jaeger v1.x")
    return f"2.{int(match.group(1)) - 63}.{match.group(2)}"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("no `go` on PATH: the stack's collector and Jaeger are built from source with Go >= 1.24 "
                         "(CLAUDE_OTEL_NO_STACK=1 skips the tests that run them)")  # fmt: skip
    return go


def _key(*inputs: Path) -> str:
    digest = hashlib.sha256(subprocess.run([_go(), "version"], capture_output=True, text=True, check=True).stdout.encode())
    for path in inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        raise BuildError(f"`{' '.join(command)}` failed (exit {result.returncode}); the last lines of {log}:\n{tail}")


def _build(name: str, version: str, key: str, make: Callable[[Path], Path]) -> Binary:
    """The cached binary `name`, made by `make(workdir) -> built file` when absent."""
    final = cache_dir() / f"{name}-{version}-{key}"
    binary = final / name
    if binary.exists():
        return Binary(name, version, binary)
    with _locked():
        if binary.exists():  # Built by another process while this one waited for the lock.
            return Binary(name, version, binary)
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir()))
        try:
            start = time.monotonic()
            print(f"building {name} {version} (once; cached in {final}) ...", file=sys.stderr, flush=True)
            built = make(work)
            (work / "out").mkdir()
            shutil.move(built, work / "out" / name)
            shutil.rmtree(final, ignore_errors=True)
            os.rename(work / "out", final)
            print(f"built {name} {version} in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Binary(name, version, binary)


def otelcol() -> Binary:
    """The collector of `stack/otelcol/builder.yaml`, built with ocb of the same release."""
    version = otelcol_version()

    def make(work: Path) -> Path:
        log = work / "build.log"
        _run([_go(), "install", f"go.opentelemetry.io/collector/cmd/builder@v{version}"], work, log, {"GOBIN": str(work / "bin")})
        _run([str(work / "bin" / "builder"), f"--config={OTELCOL_MANIFEST}"], work, log)  # output_path is relative to work
        return work / "otelcol" / "otelcol-claude-otel"

    return _build("otelcol-claude-otel", version, _key(OTELCOL_MANIFEST), make)


def jaeger() -> Binary:
    """Jaeger v2 from the pinned module of `stack/jaeger/`, its version stamped as Jaeger's own build does."""
    version = jaeger_version()

    def make(work: Path) -> Path:
        stamp = f"-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v{version}"
        output = work / "jaeger"
        # -mod=readonly: the graph is exactly go.sum's; a build never rewrites the committed files.
        _run([_go(), "build", "-mod=readonly", "-trimpath", f"-ldflags={stamp}", "-o", str(output), JAEGER_PACKAGE],
             JAEGER_MODULE, work / "build.log")  # fmt: skip
        return output

    return _build("jaeger", version, _key(JAEGER_MODULE / "go.mod", JAEGER_MODULE / "go.sum"), make)


def binaries() -> tuple[Binary, Binary]:
    """The collector and Jaeger, built if needed. Raises BuildError."""
    return otelcol(), jaeger()


def main() -> int:
    try:
        for binary in binaries():
            print(binary.name, binary.version, binary.path)
    except BuildError as error:
        print(f"build_stack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
