"""The local broker's jars: fetched once from Maven Central into a user cache folder, then reused.

The pom ships inside the package, so an installed wheel fetches the same classpath a checkout does;
the cache folder is keyed by the pom's hash, so a version bump fetches anew and never mixes jars.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

JAR_GLOB = "kafka_2.13-*.jar"
FETCHED = ".fetched"


class KafkaJarsError(RuntimeError):
    """The broker jars are missing and cannot be fetched; the message says what to install."""


def broker_file(name: str) -> Path:
    """A file shipped with the package for the local broker (pom.xml, log4j2.properties)."""
    return Path(str(resources.files("twinguard.pipelines.kafka").joinpath("broker", name)))


def cache_root() -> Path:
    """$XDG_CACHE_HOME/twinguard (default ~/.cache/twinguard)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twinguard"


def jars_dir() -> Path:
    """$TWINGUARD_KAFKA_LIB, else the cache folder for this pom (whether or not it is fetched yet)."""
    if os.environ.get("TWINGUARD_KAFKA_LIB"):
        return Path(os.environ["TWINGUARD_KAFKA_LIB"])
    digest = hashlib.sha256(broker_file("pom.xml").read_bytes()).hexdigest()[:12]
    return cache_root() / "kafka-lib" / digest


def is_fetched(lib: Path) -> bool:
    """A folder the user points at counts as soon as it has the jars; ours once the fetch completed."""
    user_given = bool(os.environ.get("TWINGUARD_KAFKA_LIB"))
    return any(lib.glob(JAR_GLOB)) and (user_given or (lib / FETCHED).exists())


def ensure_jars(quiet: bool = False) -> Path:
    """The jars folder, fetching the jars with Maven on first use; raises KafkaJarsError if it cannot."""
    lib = jars_dir()
    if is_fetched(lib):
        return lib
    if os.environ.get("TWINGUARD_KAFKA_LIB"):
        raise KafkaJarsError(f"TWINGUARD_KAFKA_LIB={lib} holds no {JAR_GLOB}: point it at a folder "
                             "with the Kafka jars, or unset it to fetch them with Maven")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaJarsError("Maven (mvn) is needed once to fetch the Kafka broker jars: install it "
                             "(Debian: apt-get install maven) or set TWINGUARD_KAFKA_LIB to a jars folder")
    if not quiet:
        print(f"fetching the Kafka broker jars with Maven into {lib} (once) ...", flush=True)
    lib.parent.mkdir(parents=True, exist_ok=True)
    # fetch into a temporary sibling and rename: an interrupted fetch never looks complete
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=lib.parent))
    cmd = [mvn, "-q", "-B", "-f", str(broker_file("pom.xml")), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not any(tmp.glob(JAR_GLOB)):
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise KafkaJarsError("Maven could not fetch the Kafka jars (is Maven Central reachable?): "
                             + " | ".join(tail))
    (tmp / FETCHED).touch()
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    return lib
