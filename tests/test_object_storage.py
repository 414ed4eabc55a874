"""Every command on an S3-compatible bucket: a real S3 API server on 127.0.0.1 (moto's server
mode, ``tests/servers.py``), reached through pyarrow's S3 filesystem with the endpoint in the
URI (``?endpoint_override=...&scheme=http``, as for MinIO or Ceph) or in ``AWS_ENDPOINT_URL``.
Nothing about the server is mocked; the commands go through the CLI and Ray as a user's do."""
import json

import pyarrow.fs as pafs

from analysis import results
from analysis.critical_ratio import load as load_search
from conftest import TINY_TICKET, error_line
from grok_core.layout import SWEEP_SPEC_FILE
from grok_core.store import ArtifactStore, Storage, join_location
from servers import BUCKET, s3_uri

# a sweep of a few seconds: one seed, two rates, a 600-step dense run shared by both
SMALL_SWEEP = ["headline", "--quick", *TINY_TICKET, "--set", "train.steps=200",
               "--set", "base.train.steps=600", "--set", "base.train.checkpoint_every=300",
               "--report-every", "100", "--seeds", "0", "--rates", "0.3,0.6"]


def _bucket(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=endpoint, scheme="http")


def test_join_location_keeps_a_uris_options_at_the_end():
    uri = "s3://b/sweeps?endpoint_override=h:9000&scheme=http"
    assert join_location(uri, "headline", "x.json") == (
        "s3://b/sweeps/headline/x.json?endpoint_override=h:9000&scheme=http")
    assert join_location("/data/sweeps/", "h") == "/data/sweeps/h"
    assert Storage(uri).display("h") == "s3://b/sweeps/h"  # messages show no options


def test_sweep_results_resume_refusal_and_report_on_a_bucket(s3_server, grok, tmp_path):
    uri = s3_uri(s3_server.endpoint, "every")
    first = grok("sweep", *SMALL_SWEEP, "--storage", uri)
    assert first.returncode == 0, first.stderr[-3000:]
    bucket = _bucket(s3_server.endpoint)
    listed = {info.path for info in bucket.get_file_info(
        pafs.FileSelector(f"{BUCKET}/every", recursive=True))}
    assert f"{BUCKET}/every/headline-quick/{SWEEP_SPEC_FILE}" in listed
    assert any(path.startswith(f"{BUCKET}/every/artifacts/dense-") and
               path.endswith("summary.json") for path in listed)

    sweep = join_location(uri, "headline-quick")
    loaded = results.load(sweep)
    assert sorted(loaded.members["pruning_rate"]) == [0.3, 0.6] and len(loaded.base) == 1
    assert not loaded.base_curves.empty  # read from the bucket's artifact store
    shown = grok("results", sweep)
    assert shown.returncode == 0 and "2/2 trials finished, 2 members" in shown.stdout

    again = grok("sweep", *SMALL_SWEEP, "--storage", uri)  # finished: nothing trains again
    assert again.returncode == 0 and "resuming" in again.stderr, again.stderr[-3000:]
    assert results.load(sweep).members.equals(loaded.members)
    changed = grok("sweep", *SMALL_SWEEP, "--set", "optim.lr=0.004", "--storage", uri)
    assert "was started with other settings" in error_line(changed)
    assert results.load(sweep).members.equals(loaded.members)  # nothing overwritten
    restarted = grok("sweep", *SMALL_SWEEP, "--set", "optim.lr=0.004", "--storage", uri,
                     "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "the old one is now s3://grok/every/headline-quick.restarted-1" in restarted.stderr
    kept = results.load(join_location(uri, "headline-quick.restarted-1"))
    assert kept.members.equals(loaded.members)  # the old sweep, whole, under its new name
    assert (results.load(sweep).trials["optim.lr"] == 0.004).all()

    page = grok("report", uri, "--out", tmp_path / "page")
    assert page.returncode == 0, page.stderr[-3000:]
    html = (tmp_path / "page" / "index.html").read_text()
    assert "s3://grok/every" in html and "endpoint_override" not in html.split("<code>")[1]
    assert (tmp_path / "page" / "headline.png").stat().st_size > 1000


def test_grok_train_and_reproduce_on_a_bucket_with_the_endpoint_in_the_environment(
        s3_server, grok, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{s3_server.endpoint}")
    uri = f"s3://{BUCKET}/env"
    trained = grok("train", "dense", "--set", "task.p=13", "--set", "train.steps=200",
                   "--storage", uri, "--out", tmp_path / "train", "--no-progress")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "s3://grok/env/artifacts/dense-" in trained.stderr

    monkeypatch.chdir(tmp_path)
    made = grok("reproduce", "--quick", "--only", "headline", *TINY_TICKET,
                "--set", "train.steps=200", "--seeds", "0", "--storage", uri)
    assert made.returncode == 0, made.stderr[-3000:]
    assert f"report: {tmp_path / 'grok_report' / 'index.html'}" in made.stdout
    assert "headline" in made.stdout and "not run" not in made.stdout.splitlines()[0]
    times = json.loads(_bucket(s3_server.endpoint).open_input_stream(
        f"{BUCKET}/env/reproduce.json").read())
    assert set(times) == {"headline"}
    # finished before: skipped, and the page written again from the bucket
    again = grok("reproduce", "--quick", "--only", "headline", *TINY_TICKET,
                 "--set", "train.steps=200", "--seeds", "0", "--storage", uri)
    assert again.returncode == 0 and "finished before (skipped)" in again.stderr


def test_a_missing_bucket_folder_is_one_line(s3_server, grok, tmp_path):
    missing = grok("report", s3_uri(s3_server.endpoint, "nothing-here"), "--out", tmp_path)
    assert "s3://grok/nothing-here: no such folder of sweeps" in error_line(missing)


def test_critical_ratio_search_on_a_bucket_with_a_sqlite_study(s3_server, grok, tmp_path):
    uri = s3_uri(s3_server.endpoint, "search")
    refused = grok("critical-ratio", "--quick", "--storage", uri)
    assert "--study-storage" in error_line(grok("reproduce", "--quick", "--storage", uri))
    assert "--study-storage" in error_line(refused)
    study = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["critical-ratio", "--quick", *TINY_TICKET, "--set", "train.steps=300",
            "--trials", "2", "--seeds", "0", "--storage", uri, "--study-storage", study]
    found = grok(*args)
    assert found.returncode == 0, found.stderr[-3000:]
    search = load_search(join_location(uri, "critical_ratio_search-quick"))
    assert search.trials == 2 and len(search.members) == 2
    store = ArtifactStore(uri)
    assert store.is_dir("artifacts")


def test_a_storage_outage_mid_sweep_ends_clearly_and_the_same_command_finishes(
        s3_server, grok, tmp_path):
    import subprocess
    import time

    from conftest import TINY, grok_command, grok_env
    from servers import Relay

    relay = Relay(s3_server.port)  # the sweep reaches the server only through this
    uri = s3_uri(relay.endpoint, "outage")
    args = ["sweep", "lr_wd", "--quick", *TINY, "--set", "optim.lr=0.01",
            "--set", "optim.weight_decay=1", "--set", "train.steps=8000", "--seeds", "0",
            "--report-every", "200", "--name", "o"]
    bucket = _bucket(s3_server.endpoint)
    driver = subprocess.Popen(grok_command(*args, "--storage", uri), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=grok_env())
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None and not any(
            info.base_name.startswith("checkpoint_") for info in bucket.get_file_info(
                pafs.FileSelector(f"{BUCKET}/outage/o", recursive=True, allow_not_found=True))):
        time.sleep(0.2)
    relay.cut()  # the storage goes away mid-run, with a checkpoint of the trial stored
    cut_at = time.time()
    try:
        _, err = driver.communicate(timeout=400)
    finally:
        relay.restore()
    outage = time.time() - cut_at
    # Tune logs each trial's failure above; the command itself ends with one line, exit 1
    last = err.strip().splitlines()[-1]
    assert driver.returncode == 1, err[-3000:]
    assert last.startswith("grok: error: storage s3://grok/outage stopped answering"), last
    assert "rerun the same command once it is back" in last
    print(f"the driver stopped {outage:.0f} s into the outage: {err.splitlines()[-1]}")

    again = grok(*args, "--storage", uri)  # the server is back: the same command finishes
    assert again.returncode == 0, again.stderr[-3000:]
    alone = grok(*args, "--storage", tmp_path / "local")  # the same sweep, never interrupted
    assert alone.returncode == 0, alone.stderr[-3000:]
    resumed = results.load(join_location(uri, "o")).members
    uninterrupted = results.load(str(tmp_path / "local" / "o")).members
    columns = ["seed", "t_mem", "t_gen", "final_test_acc"]
    assert resumed[columns].equals(uninterrupted[columns])
