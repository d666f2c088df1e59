"""The render farm on a real Ray cluster: a head and a second node started
with ``ray start`` on 127.0.0.1 (one CPU each), the driver a separate
``vidcolor ... --ray 127.0.0.1:PORT`` process. The output equals the single
run; a node killed mid-job loses its segment, which the driver renders
again, and the output is byte-identical to an undisturbed job's."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from raycluster import RayCluster
from synth import decode_pts, make_clip, make_still, packet_bytes
from vidcolor import load_config
from vidcolor.farm.segment import STALL_ENV
from vidcolor.pipeline import colorize_video

pytest.importorskip("ray")
pytestmark = pytest.mark.ray_cluster

ROOT = Path(__file__).resolve().parent.parent


def _assert_same_film(out, single, src):
    """As test_farm's: frame for frame within encoder noise, the same pts, the same audio packets."""
    assert decode_pts(out) == decode_pts(single) == decode_pts(src)
    assert packet_bytes(src) and packet_bytes(out) == packet_bytes(src)
    with av.open(str(out)) as a, av.open(str(single)) as b:
        pairs = [(x.to_ndarray(format="yuv444p").astype(np.float64), y.to_ndarray(format="yuv444p").astype(np.float64))
                 for x, y in zip(a.decode(video=0), b.decode(video=0))]
    assert len(pairs) == 48
    psnr = [10 * np.log10(255 ** 2 / max(np.mean((x - y) ** 2), 1e-10)) for x, y in pairs]
    assert min(psnr) >= 45, np.round(psnr, 1)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """The 4-shot clip of test_farm (three segments), its still, its config and the single run."""
    d = tmp_path_factory.mktemp("cluster")
    src = make_clip(d / "film.mp4", n=48, w=112, h=80, audio=True, shots=(0, 8, 16, 32))
    still = make_still(d / "ref.png")
    cfg = d / "c.yaml"
    cfg.write_text("colorizer: transfer\nfarm:\n  segment_seconds: 0.7\n")
    single = d / "single.mp4"
    colorize_video(src, single, reference=still, config=load_config(cfg))
    return src, still, cfg, single


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    path = os.pathsep.join(filter(None, [os.fspath(ROOT), os.environ.get("PYTHONPATH")]))
    with RayCluster(tmp_path_factory.mktemp("ray"), cpus=(1, 1), env={"PYTHONPATH": path}) as c:
        yield c


def _driver(cluster, film, out: Path, cfg: Path | None = None, **env) -> subprocess.Popen:
    src, still, film_cfg, _ = film
    cmd = [sys.executable, "-m", "vidcolor", str(src), "-r", str(still), "-c", str(cfg or film_cfg), "--ray",
           cluster.address, "-o", str(out), "--report", str(out.with_suffix(".json")), "-q"]
    return subprocess.Popen(cmd, env={**cluster.env, "VIDCOLOR_DEBUG": "", **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def undisturbed(cluster, film, tmp_path_factory):
    """A job on the whole cluster: (output, report, the driver's exit code and messages)."""
    out = tmp_path_factory.mktemp("undisturbed") / "ray.mp4"
    driver = _driver(cluster, film, out)
    log, _ = driver.communicate(timeout=600)
    report = json.loads(out.with_suffix(".json").read_text()) if driver.returncode == 0 else None
    return out, report, driver.returncode, log


def test_two_nodes_equal_the_single_run(undisturbed, film):
    src, _, _, single = film
    out, report, code, log = undisturbed
    assert code == 0, log
    assert report["segments"] == 3 and sorted(report["rendered"]) == [0, 1, 2] and not report["lost"]
    _assert_same_film(out, single, src)


def test_a_node_killed_mid_job_and_the_job_still_finishes_identical(cluster, film, undisturbed, tmp_path):
    src, _, _, single = film
    assert undisturbed[2] == 0, undisturbed[3]
    out = tmp_path / "lost.mp4"
    cfg = tmp_path / "c.yaml"  # no retries: a lost node must not need one
    cfg.write_text(film[2].read_text() + "  retries: 0\n")
    driver = _driver(cluster, film, out, cfg, **{STALL_ENV: "8"})  # first attempts wait 8 s: one is caught mid-job
    try:
        deadline = time.monotonic() + 300
        while not cluster.tasks("worker") and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert cluster.tasks("worker"), "no segment was sent to the second node"
        cluster.kill_node("worker")  # SIGKILL: its raylet, its workers, its ray start
        log, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, log
    report = json.loads(out.with_suffix(".json").read_text())
    assert len(report["lost"]) == 1 and sorted(report["rendered"]) == [0, 1, 2], report
    assert "was lost with its worker or node" in log
    _assert_same_film(out, single, src)
    assert out.read_bytes() == undisturbed[0].read_bytes()
