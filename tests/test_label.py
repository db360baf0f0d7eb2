"""The real-pool loop closed: the labeling server (its API, bad requests, concurrent writers, kill -9,
a real browser), then ``fit`` and ``predict`` on a folder of Fashion-MNIST images."""

import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunefuse.active.label_server import create_app
from prunefuse.active.label_store import LabelStore
from prunefuse.active.labeling import LabelingSession
from prunefuse.active.pool import split_labels
from prunefuse.data.pool import read_label_rows, read_pool, read_queue
from prunefuse.errors import UserError
from prunefuse.io import checkpoint
from test_errors import assert_refused, cli

with warnings.catch_warnings():  # newer Starlette asks for httpx2 but still runs on httpx, which older ones need
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CLASSES = ["a", "b", "c"]
QUEUED = [f"part{i % 2}/s{i}" for i in range(10, 20)]
TINY_SELECTOR = ["--arch", "preact8", "--epochs", 1, "--steps", 0, "--quiet"]


@pytest.fixture
def pool(tmp_path):
    """40 random 8x8 images whose ids hold slashes, as a folder pool's do, and a queue of ten."""
    g = np.random.default_rng(0)
    ids = np.array([f"part{i % 2}/s{i}" for i in range(40)])
    np.savez(tmp_path / "pool.npz", x=g.integers(0, 256, (40, 8, 8), dtype=np.uint8), ids=ids)
    (tmp_path / "queue.csv").write_text("id,score\n" + "".join(f"{i},0.5\n" for i in QUEUED))
    return tmp_path


def open_session(folder, **kw) -> LabelingSession:
    return LabelingSession(folder / "pool.npz", folder / "labels.csv", folder / "queue.csv", kw.pop("classes", CLASSES),
                           **kw)


@pytest.fixture
def client(pool):
    return TestClient(create_app(open_session(pool)))


def label(client, sample, name):
    return client.post("/api/label", json={"id": sample, "label": name})


def rows(folder):
    return read_label_rows(folder / "labels.csv")


# --- the API ------------------------------------------------------------------------------------------
def test_next_label_and_progress(pool, client):
    state = client.get("/api/next").json()
    assert state["id"] == QUEUED[0] and state["classes"] == CLASSES
    assert (state["done"], state["total"], state["labeled"]) == (0, 10, 0)
    answer = label(client, QUEUED[0], "b")
    assert answer.status_code == 200 and answer.json()["done"] == 1
    assert rows(pool) == [(QUEUED[0], "b")]
    assert client.get("/api/next").json()["id"] == QUEUED[1]
    for sample in QUEUED[1:]:
        assert label(client, sample, "a").status_code == 200
    state = client.get("/api/next").json()
    assert state["id"] is None and (state["done"], state["total"]) == (10, 10)


def test_image_is_the_pools_stored_image(pool, client):
    answer = client.get(client.get("/api/next").json()["image"])
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    stored = read_pool(pool / "pool.npz")
    expected = stored.images[stored.position[QUEUED[0]]][0].numpy()
    from io import BytesIO

    assert np.array_equal(np.asarray(Image.open(BytesIO(answer.content))), expected)


def test_a_label_already_written_is_refused_and_written_once(pool, client):
    assert label(client, QUEUED[0], "a").status_code == 200
    again = label(client, QUEUED[0], "b")
    assert again.status_code == 409 and "already labeled" in again.json()["error"]
    assert rows(pool) == [(QUEUED[0], "a")]


@pytest.mark.parametrize("method,path,body,status,words", [
    ("post", "/api/label", {"id": "nope", "label": "a"}, 404, "unknown id"),
    ("post", "/api/label", {"id": "part0/s2", "label": "a"}, 400, "not in the queue"),
    ("post", "/api/label", {"id": QUEUED[0], "label": "zebra"}, 400, "unknown class"),
    ("post", "/api/label", b"{not json", 400, "not JSON"),
    ("post", "/api/label", b"", 400, "not JSON"),
    ("post", "/api/label", [QUEUED[0], "a"], 400, "JSON object"),
    ("post", "/api/label", {"id": QUEUED[0]}, 400, '"label" must be a string'),
    ("post", "/api/label", {"id": 3, "label": "a"}, 400, '"id" must be a string'),
    ("post", "/api/skip", {"id": "nope"}, 404, "unknown id"),
    ("post", "/api/select", {"n": 0}, 400, "out of range"),
    ("post", "/api/select", {"n": True}, 400, "whole number"),
    ("post", "/api/select", {"n": "5"}, 400, "whole number"),
    ("post", "/api/select", {"n": 3}, 409, "two classes"),
    ("post", "/api/undo", {}, 409, "nothing to undo"),
    ("get", "/api/label", None, 405, "Method Not Allowed"),
    ("get", "/api/nothing", None, 404, "Not Found"),
])
def test_bad_requests_get_a_json_4xx_and_the_server_goes_on(pool, client, method, path, body, status, words):
    if method == "get":
        answer = client.get(path)
    elif isinstance(body, bytes):
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        answer = client.post(path, json=body)
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert not (pool / "labels.csv").read_text().strip().splitlines()[1:]
    assert label(client, QUEUED[0], "a").status_code == 200


def test_a_post_that_does_not_say_json_is_refused(client):
    """A page on another site can send a form or text/plain without asking; those never write a label."""
    answer = client.post("/api/label", content=json.dumps({"id": QUEUED[0], "label": "a"}),
                         headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415 and "Content-Type: application/json" in answer.json()["error"]
    assert client.post("/api/undo").status_code == 415


@pytest.mark.parametrize("path", ["/image/../../etc/passwd", "/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                                  "/image/..%2f..%2f..%2fetc%2fpasswd", "/image/%2e%2e/%2e%2e/etc/passwd",
                                  "/image//etc/passwd", "/image/part0/../../../etc/passwd", "/image/%00",
                                  "/image/part0%2fs10%00.png"])
def test_paths_that_try_to_leave_the_pool_are_refused(client, path):
    answer = client.get(path)
    assert 400 <= answer.status_code < 500 and "error" in answer.json()
    assert client.get("/image/" + QUEUED[0]).status_code == 200


def test_undo_takes_back_this_servers_labels_only(pool):
    (pool / "labels.csv").write_text(f"id,label\n{QUEUED[5]},c\n")
    client = TestClient(create_app(open_session(pool)))
    for sample, name in zip(QUEUED[:3], CLASSES, strict=True):
        assert label(client, sample, name).status_code == 200
    undone = client.post("/api/undo", json={})
    assert undone.status_code == 200 and undone.json()["id"] == QUEUED[2]
    assert rows(pool) == [(QUEUED[5], "c"), (QUEUED[0], "a"), (QUEUED[1], "b")]
    assert client.get("/api/next").json()["id"] == QUEUED[2]
    assert [client.post("/api/undo", json={}).status_code for _ in range(3)] == [200, 200, 409]
    assert rows(pool) == [(QUEUED[5], "c")]
    assert not list(pool.glob(".labels.csv.*"))  # no temporary file left behind


def test_skip_moves_on_and_counts(client):
    assert client.post("/api/skip", json={"id": QUEUED[0]}).json()["skipped"] == 1
    state = client.get("/api/next").json()
    assert state["id"] == QUEUED[1] and state["skipped"] == 1 and state["done"] == 0
    assert label(client, QUEUED[1], "a").status_code == 200
    assert client.post("/api/skip", json={"id": QUEUED[1]}).status_code == 409


# --- concurrent writers ---------------------------------------------------------------------------------
def test_concurrent_labels_from_threads_write_each_id_once(pool):
    app = create_app(open_session(pool))
    answers: dict[str, list[int]] = {s: [] for s in QUEUED}

    def tab(name):
        with TestClient(app) as c:
            for sample in QUEUED:
                answers[sample].append(label(c, sample, name).status_code)

    threads = [threading.Thread(target=tab, args=(name,)) for name in CLASSES * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(sorted(codes) == [200] + [409] * 5 for codes in answers.values()), answers
    written = rows(pool)
    assert sorted(i for i, _ in written) == sorted(QUEUED)


def test_two_servers_on_one_file_never_duplicate(pool):
    """Two stores stand for two server processes: the file lock and a re-read keep the file whole."""
    ids = read_pool(pool / "pool.npz")
    stores = [LabelStore(pool / "labels.csv", ids, CLASSES) for _ in range(2)]
    outcome: list[str] = []

    def write(store, order):
        for sample in order:
            try:
                store.add(sample, "a")
                outcome.append(sample)
            except UserError:
                pass

    threads = [threading.Thread(target=write, args=(s, o)) for s, o in zip(stores, (ids.ids, ids.ids[::-1]),
                                                                           strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome) == sorted(ids.ids)
    assert sorted(i for i, _ in rows(pool)) == sorted(ids.ids)
    writer = next(s for s in stores if s.written)
    other = stores[1 - stores.index(writer)]
    undone, _ = writer.undo()
    other.add(undone, "b")  # the other store sees the undo ...
    with pytest.raises(UserError, match="already labeled"):
        writer.add(undone, "c")  # ... and this one the other's label
    assert dict(rows(pool))[undone] == "b" and len(rows(pool)) == len(ids.ids)


# --- start-up -------------------------------------------------------------------------------------------
def test_an_unfinished_last_line_is_cut_and_a_hand_written_one_kept(pool):
    (pool / "labels.csv").write_text(f"id,label\n{QUEUED[0]},a\n{QUEUED[1]},b\npart1/s1")
    session = open_session(pool)
    assert "unfinished last line" in session.store.repaired
    assert rows(pool) == [(QUEUED[0], "a"), (QUEUED[1], "b")]
    (pool / "labels.csv").write_text(f"id,label\n{QUEUED[0]},a\n{QUEUED[1]},b")
    assert open_session(pool).store.repaired is None
    assert (pool / "labels.csv").read_text().endswith(f"{QUEUED[1]},b\n")


@pytest.mark.parametrize("change,words", [
    (lambda d: (d / "pool.npz").unlink(), ["not a folder or an .npz"]),
    (lambda d: (d / "labels.csv").write_text("id,label\nnope,a\n"), ["not in the pool"]),
    (lambda d: (d / "labels.csv").write_text("name,class\n"), ["header", "id and label"]),
    (lambda d: (d / "queue.csv").write_text("id,score\nnope,1\n"), ["queue", "not in the pool"]),
])
def test_start_up_problems_are_one_line(pool, capsys, change, words):
    change(pool)
    code = cli("label", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--queue", pool / "queue.csv",
               "--classes", "a,b,c", "--port", 0)
    assert_refused(capsys, code, *words)


def test_no_classes_known_is_refused(pool, capsys):
    code = cli("label", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--queue", pool / "queue.csv")
    assert_refused(capsys, code, "no class names known", "--classes")


def test_a_port_in_use_is_refused(pool, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code = cli("label", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--queue",
                   pool / "queue.csv", "--classes", "a,b,c", "--port", taken.getsockname()[1])
    assert_refused(capsys, code, "in use", "--port")


# --- the real server: kill -9 ---------------------------------------------------------------------------
def start_server(folder, log, *extra):
    """``prunefuse label`` in its own process on a free port; returns the process and its address."""
    proc = subprocess.Popen([sys.executable, "-m", "prunefuse", "label", "--pool", str(folder / "pool.npz"),
                             "--labels", str(folder / "labels.csv"), "--queue", str(folder / "queue.csv"),
                             "--port", "0", *map(str, extra)], stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    found = re.search(r"http://\S+/", line)
    if not found:
        proc.kill()
        proc.wait()
        pytest.fail(f"the server did not start: {line!r} {Path(log.name).read_text()[-2000:]}")
    return proc, found.group(0)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


def request(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def raw_get(url, path):
    """GET ``path`` exactly as written: no client tidies ``..`` away before the server sees it."""
    host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    answer = conn.getresponse()
    status, body = answer.status, json.loads(answer.read())
    conn.close()
    return status, body


def test_kill_9_loses_no_acknowledged_label_and_duplicates_none(tmp_path):
    g = np.random.default_rng(1)
    queued = [f"part{i % 3}/s{i}" for i in range(60)]
    np.savez(tmp_path / "pool.npz", x=g.integers(0, 256, (60, 8, 8), dtype=np.uint8), ids=np.array(queued))
    (tmp_path / "queue.csv").write_text("id,score\n" + "".join(f"{i},1\n" for i in queued))
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    proc, url = start_server(tmp_path, log, "--classes", "a,b,c")
    acknowledged: dict[str, str] = {}
    try:
        for path in ("/image/../../etc/passwd", "/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/image/..%2F..%2Fetc"):
            status, body = raw_get(url, path)
            assert 400 <= status < 500 and "error" in body, (path, status, body)

        def label_all():
            for n, sample in enumerate(queued):
                try:
                    status, _ = request(url + "api/label", "POST", {"id": sample, "label": CLASSES[n % 3]})
                except (OSError, http.client.HTTPException):  # IncompleteRead: killed while answering
                    return  # the server is gone
                if status == 200:
                    acknowledged[sample] = CLASSES[n % 3]

        writer = threading.Thread(target=label_all)
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 15 and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # while labels are in flight
        proc.wait()
        writer.join()
        assert len(acknowledged) >= 15
        written = read_label_rows(tmp_path / "labels.csv")  # whole lines only: it parses
        ids = [i for i, _ in written]
        assert len(ids) == len(set(ids)), "a label was written twice"
        assert acknowledged.items() <= dict(written).items(), "an acknowledged label was lost"
        assert len(written) <= len(acknowledged) + 1  # at most the one that was in flight
    finally:
        stop(proc)

    proc, url = start_server(tmp_path, log, "--classes", "a,b,c")
    try:
        status, state = request(url + "api/next")
        assert status == 200 and state["id"] == queued[len(written)] and state["done"] == len(written)
        assert request(url + "api/label", "POST", {"id": queued[0], "label": "b"})[0] == 409
        for n, sample in enumerate(queued[len(written):], start=len(written)):
            assert request(url + "api/label", "POST", {"id": sample, "label": CLASSES[n % 3]})[0] == 200
        assert request(url + "api/next")[1]["id"] is None
    finally:
        stop(proc)
        log.close()
    final = read_label_rows(tmp_path / "labels.csv")
    assert sorted(i for i, _ in final) == sorted(queued)
    assert acknowledged.items() <= dict(final).items()


# --- the real browser ------------------------------------------------------------------------------------
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def chrome(profile: Path):
    """Debian's headless Chromium under Selenium, or a skip that says what to install."""
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(browser).is_file() and Path(driver).is_file()):
        pytest.skip("no Chromium and chromedriver installed (apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size=1100,900"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_label_in_a_real_browser_with_the_keyboard(pool, tmp_path):
    driver = chrome(tmp_path / "profile")
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    proc, url = start_server(pool, log, "--classes", "a,b,c")
    try:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.support.ui import WebDriverWait

        def progress_is(text):
            WebDriverWait(driver, 30).until(lambda d: d.find_element("id", "progress-text").text == text)

        def shown():
            return WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "const img = document.getElementById('sample');"
                "return !img.hidden && img.complete && img.naturalWidth > 0 && img.dataset.id"))

        driver.get(url)
        progress_is("0 of 10 labeled")
        for n, key in enumerate("123"):
            assert shown() == QUEUED[n]
            ActionChains(driver).send_keys(key).perform()
            progress_is(f"{n + 1} of 10 labeled")
        ActionChains(driver).send_keys("u").perform()
        progress_is("2 of 10 labeled")
        driver.refresh()
        progress_is("2 of 10 labeled")
        assert shown() == QUEUED[2]
        assert driver.find_element("id", "caption").text == QUEUED[2]
        assert rows(pool) == [(QUEUED[0], "a"), (QUEUED[1], "b")]
    finally:
        driver.quit()
        stop(proc)
        log.close()


# --- selection from the page, fit and predict ------------------------------------------------------------
def wait_for_selection(client) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get("/api/select").json()
        if state["state"] != "running":
            return state
        time.sleep(0.1)
    raise AssertionError("the selection did not finish")


def test_pick_the_next_n_refills_the_queue_with_progress(pool):
    (pool / "labels.csv").write_text("id,label\n" + "".join(f"part{i % 2}/s{i},{CLASSES[i % 3]}\n"
                                                          for i in range(6)))
    assert cli("select", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--budget", 10, "--out",
               pool / "queue.csv", *TINY_SELECTOR) == 0
    client = TestClient(create_app(open_session(pool)))
    first = client.get("/api/next").json()["id"]
    assert label(client, first, "a").status_code == 200
    assert client.post("/api/select", json={"n": 7}).status_code == 202
    assert client.post("/api/select", json={"n": 7}).status_code in (202, 409)  # 409 while the first still runs
    state = wait_for_selection(client)
    assert state["state"] == "done" and state["epoch"] == state["epochs"] >= 1, state
    queue = read_queue(pool / "queue.csv", read_pool(pool / "pool.npz"))
    assert len(queue) == 7 and first not in queue
    after = client.get("/api/next").json()
    assert after["id"] == queue[0] and (after["done"], after["total"]) == (0, 7)


def test_the_workspace_remembers_the_classes_and_their_order(pool):
    (pool / "labels.csv").write_text("id,label\npart0/s0,c\npart1/s1,a\n")
    select_again = ["select", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--budget", 3, "--out",
                    pool / "queue.csv", *TINY_SELECTOR]
    assert cli(*select_again, "--classes", "c,b,a") == 0
    assert cli(*select_again) == 0  # not the sorted labels (a, c), which the workspace would refuse
    assert json.loads((pool / "prunefuse-work" / "config.json").read_text())["config"]["classes"] == ["c", "b", "a"]
    assert LabelingSession(pool / "pool.npz", pool / "labels.csv", pool / "queue.csv").next()["classes"] == \
        ["c", "b", "a"]


def test_a_workspace_made_for_another_pool_is_refused_at_start_up(pool):
    (pool / "labels.csv").write_text("id,label\n" + "".join(f"part{i % 2}/s{i},{CLASSES[i % 3]}\n" for i in range(6)))
    assert cli("select", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--budget", 3, "--out",
               pool / "queue.csv", *TINY_SELECTOR) == 0
    ids = np.load(pool / "pool.npz")["ids"]
    np.savez(pool / "larger.npz", x=np.zeros((40, 12, 12), dtype=np.uint8), ids=ids)
    with pytest.raises(UserError, match=r"another config \(input_shape.*--pool"):
        LabelingSession(pool / "larger.npz", pool / "labels.csv", pool / "queue.csv")
    LabelingSession(pool / "pool.npz", pool / "labels.csv", pool / "queue.csv")  # the pool it was made for


def test_split_labels_is_seeded_and_stratified():
    names = ["a"] * 10 + ["b"] * 5 + ["c"] * 2
    train, held = split_labels(names, 0.2, 7)
    assert (train, held) == split_labels(names, 0.2, 7)
    assert sorted(train + held) == list(range(17))
    assert [sum(names[i] == c for i in held) for c in "abc"] == [2, 1, 1]
    assert [sum(names[i] == c for i in train) for c in "abc"] == [8, 4, 1]
    train, held = split_labels(["a", "a", "b"], 0.3, 0)  # b has one sample: not stratified
    assert len(held) == 1 and len(train) == 2
    assert split_labels(names, 0, 0) == (list(range(17)), [])


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory, fashion_subset):
    """150 Fashion-MNIST training images as PNG files in two subfolders, and their true classes."""
    train, _ = fashion_subset
    root = tmp_path_factory.mktemp("fashion") / "images"
    truth = {}
    for n in range(150):
        sample = f"batch{n % 2}/img{n:03d}.png"
        (root / sample).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(train.images[n, 0].numpy()).save(root / sample)
        truth[sample] = train.classes[int(train.labels[n])]
    return root, truth


def test_the_whole_loop_select_label_select_fit_predict(fashion_folder, tmp_path, capsys):
    images, truth = fashion_folder
    labels, queue, work = tmp_path / "labels.csv", tmp_path / "to_label.csv", tmp_path / "prunefuse-work"
    classes = sorted(set(truth.values()))
    first = {c: [s for s in sorted(truth) if truth[s] == c][:2] for c in classes}
    labels.write_text("id,label\n" + "".join(f"{s},{c}\n" for c, ss in first.items() for s in ss))
    assert cli("select", "--pool", images, "--labels", labels, "--budget", 10, "--out", queue, *TINY_SELECTOR) == 0

    client = TestClient(create_app(LabelingSession(images, labels, queue)))  # classes from the workspace
    assert client.get("/api/next").json()["classes"] == classes
    for _ in range(2):  # label the queue, then pick the next ten from the page and label those
        while (sample := client.get("/api/next").json()["id"]) is not None:
            assert label(client, sample, truth[sample]).status_code == 200
        assert client.post("/api/select", json={"n": 10}).status_code == 202
        assert wait_for_selection(client)["state"] == "done"
    assert len(read_label_rows(labels)) == 40

    out = tmp_path / "final"
    assert cli("fit", "--pool", images, "--labels", labels, "--out", out, "--epochs", 2, "--steps", 0,
               "--val-fraction", 0.25, "--quiet") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["labeled"] == results["train"] + results["validation"] == 40
    assert 10 <= results["validation"] <= 14  # about a quarter, and one at least of each of the ten classes
    assert 0 <= results["validation_accuracy"] <= 1 and results["kd"] is False and results["fill"] == "reinit"
    model, meta = checkpoint.load_model(out)
    assert meta["classes"] == classes and meta["input_shape"] == [1, 28, 28] and meta["arch"] == "preact8"
    assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, len(classes))
    assert json.loads((out / "config.json").read_text())["command"] == "fit"
    assert work.is_dir()
    assert cli("fit", "--pool", images, "--labels", labels, "--out", out, "--epochs", 2, "--steps", 0,
               "--val-fraction", 0.25, "--quiet") == 0  # the finished fit is reused
    assert json.loads((out / "results.json").read_text()) == results
    assert_refused(capsys, cli("fit", "--pool", images, "--labels", labels, "--out", out, "--epochs", 3, "--quiet"),
                   "another config", "--overwrite")

    predictions = tmp_path / "predictions.csv"
    assert cli("predict", "--model", out, "--images", images, "--out", predictions) == 0
    rows = read_label_rows(predictions)
    assert [i for i, _ in rows] == sorted(truth) and {c for _, c in rows} <= set(classes)
    with open(predictions) as f:
        assert f.readline().strip() == "id,label,confidence"
        assert all(0 < float(line.rsplit(",", 1)[1]) <= 1 for line in f)


def test_predict_refuses_images_the_model_cannot_take(fashion_folder, tmp_path, capsys):
    images, _ = fashion_folder
    labels = tmp_path / "labels.csv"
    ids = sorted(p.relative_to(images).as_posix() for p in images.rglob("*.png"))
    labels.write_text("id,label\n" + "".join(f"{s},{'ab'[n % 2]}\n" for n, s in enumerate(ids[:8])))
    assert cli("select", "--pool", images, "--labels", labels, "--budget", 2, "--out", tmp_path / "q.csv",
               *TINY_SELECTOR) == 0
    out = tmp_path / "final"
    assert cli("fit", "--pool", images, "--labels", labels, "--out", out, "--epochs", 1, "--steps", 0,
               "--kd", "--fill", "init", "--quiet") == 0
    assert json.loads((out / "results.json").read_text())["kd"] is True
    other = tmp_path / "other.npz"  # the same ids, but not the images the workspace was made from
    np.savez(other, x=np.zeros((len(ids), 8, 8), np.uint8), ids=np.array(ids))
    assert_refused(capsys, cli("fit", "--pool", other, "--labels", labels, "--out", tmp_path / "again", "--quiet"),
                   "selector workspace of 'prunefuse select'", "input_shape", "--pool and --classes")
    assert not (tmp_path / "again").exists()
    work = tmp_path / "prunefuse-work"
    before = (work / "attempts.jsonl").read_text()
    for target, words in ((tmp_path / "labels.csv", "is a file"), (work, "is the selector workspace")):
        assert_refused(capsys, cli("fit", "--pool", images, "--labels", labels, "--out", target, "--quiet"), words)
    assert (work / "attempts.jsonl").read_text() == before  # a refused fit leaves the workspace as it was
    assert_refused(capsys, cli("select", "--pool", other, "--labels", labels, "--budget", 2, "--out",
                               tmp_path / "q2.csv", *TINY_SELECTOR), "choose another --workspace", "--overwrite")
    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, x=np.zeros((3, 28, 28, 3), np.uint8))
    assert_refused(capsys, cli("predict", "--model", out, "--images", rgb, "--out", tmp_path / "p.csv"),
                   "3 channel", "greyscale")
    small = tmp_path / "small.npz"
    np.savez(small, x=np.zeros((3, 8, 8), np.uint8))
    assert_refused(capsys, cli("predict", "--model", out, "--images", small, "--out", tmp_path / "p.csv"),
                   "8x8", "28x28")
    assert_refused(capsys, cli("predict", "--model", out, "--images", images, "--out", tmp_path), "directory")
    assert_refused(capsys, cli("predict", "--model", tmp_path / "nothing", "--images", images, "--out",
                               tmp_path / "p.csv"), "checkpoint")
    assert not (tmp_path / "p.csv").exists()


def test_fit_without_a_workspace_is_refused(pool, capsys):
    (pool / "labels.csv").write_text(f"id,label\n{QUEUED[0]},a\n{QUEUED[1]},b\n")
    assert_refused(capsys, cli("fit", "--pool", pool / "pool.npz", "--labels", pool / "labels.csv", "--out",
                               pool / "out"), "no workspace", "prunefuse select")
    assert not (pool / "out").exists()


def test_fit_settings_follow_active_defaults():
    from prunefuse.active import ActiveConfig
    from prunefuse.active.pool import FitConfig

    d, f = ActiveConfig(), FitConfig()
    assert (f.kd, f.fill, f.fusion_scope, f.epochs, f.steps) == (d.kd, d.fill, d.fusion_scope, d.target_epochs,
                                                                 d.target_steps)
    assert (f.kd_alpha, f.kd_temperature, f.kd_schedule) == (d.train["kd_alpha"], d.train["kd_temperature"],
                                                             d.train["kd_schedule"])
