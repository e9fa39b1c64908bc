"""mnist-serve: the Starlette app driven in-process through Starlette's TestClient (every API rule, every bad
request), the command started for real on 127.0.0.1 for what only a real server shows (its limits on slow clients,
its command line), and its page driven in a real headless Chromium (Debian's chromium and chromium-driver, which
.ci/run installs). The model: a CNN trained on real digits and exported to int8, built once per test run."""

import base64
import contextlib
import http.client
import io
import json
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import smoke
from conftest import built_once
from helpers import start_runtime
from PIL import Image

from mnist_pipeline import datasets, inputs, model_files

start_runtime()
import keras  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from mnist_pipeline import baseline_model, export, inference, serving_app, training  # noqa: E402

SERVE = Path(sys.executable).with_name("mnist-serve")
PREDICT = Path(sys.executable).with_name("mnist-predict")
MAX_BODY = 2_000_000


def train_and_export(root, raw_mnist_dir):
    """The baseline CNN trained 2 epochs on 20 000 real digits (about 98 %), exported as export does: a model
    directory and an int8 .tflite with its dataset.json."""
    mnist = datasets.DATASETS["mnist"]
    x, y = mnist.read_split(raw_mnist_dir, "train")
    description = mnist.describe()
    # Keras numbers layer names per process: without this, models built by earlier tests in the same worker would
    # make the input "input_layer_3" rather than the "input_layer" a fresh export has.
    keras.backend.clear_session()
    settings = baseline_model.Baseline(conv_filters=(16, 32), kernel_size=3, dense_units=64, dropout=0.0,
                                       learning_rate=2e-3)
    model = baseline_model.build_baseline(settings, description)
    training.fit(model, x[:20000], y[:20000], batch_size=128, epochs=2, verbose=0)
    model_files.save(root / "model", model, description)
    (root / "export").mkdir()
    with export.fresh_saved_model(model, root / "serving") as saved_model:
        (root / "export" / "int8.tflite").write_bytes(export.tflite_int8(saved_model, inputs.scaled(x[:200])))
    x_test, y_test = mnist.read_split(raw_mnist_dir, "test")
    int8 = inference.LiteRTRunner(root / "export" / "int8.tflite", threads=2)
    accuracy = float(np.mean(int8.predict(inputs.scaled(x_test[:2000])).argmax(axis=1) == y_test[:2000]))
    model_files.describe(root / "export", description, ["int8.tflite"], test_accuracy={"int8.tflite": accuracy})


@pytest.fixture(scope="session")
def exported(raw_mnist_dir, tmp_path_factory):
    """(root of the model files, 64 test images as floats, their labels, the same digits as uint8 28x28)."""
    root = built_once(tmp_path_factory, "served-model", lambda built: train_and_export(built, raw_mnist_dir))
    x_test, y_test = datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "test")
    return root, inputs.scaled(x_test[:64]), y_test[:64], x_test[:64, ..., 0]


class Answers:
    """What a client sees: (status, parsed JSON or text) of each request, from the app in-process."""

    def __init__(self, client):
        self.client = client

    def request(self, method, path, body=None, headers=None):
        response = self.client.request(method, path, content=body, headers=headers or {})
        kind = response.headers.get("content-type", "")
        return response.status_code, response.json() if kind.startswith("application/json") else response.text

    def predict(self, body):
        return self.request("POST", "/v1/models/mnist:predict", json.dumps(body),
                            {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def app(exported):
    service = serving_app.Service(exported[0] / "export" / "int8.tflite", "mnist", threads=2)
    with TestClient(serving_app.app(service, MAX_BODY, 1.0)) as client:
        yield Answers(client)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """mnist-serve started as a user starts it; `open_files`: its limit of open file descriptors."""

    def __init__(self, model, *options, open_files=None, name="mnist"):
        self.port = free_port()
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))) if open_files else None
        self.process = subprocess.Popen([SERVE, "--model", str(model), "--port", str(self.port), *options],
                                        env=smoke.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, preexec_fn=limit)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.request("GET", f"/v1/models/{name}")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"mnist-serve did not start: {self.process.communicate()[0]}")

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON or text) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            text = response.read().decode()
            kind = response.getheader("content-type", "")
            return response.status, json.loads(text) if kind.startswith("application/json") else text
        finally:
            connection.close()

    def predict(self, body):
        return self.request("POST", "/v1/models/mnist:predict", json.dumps(body),
                            {"Content-Type": "application/json"})

    def stop(self):
        self.process.terminate()
        return self.process.communicate(timeout=10)[0]


@pytest.fixture(scope="module")
def server(exported):
    root = exported[0]
    running = Server(root / "export" / "int8.tflite", "--max-body-bytes", str(MAX_BODY), "--body-seconds", "1")
    yield running
    output = running.stop()
    assert "Traceback" not in output, output


def test_status_and_metadata_answer_as_tensorflow_serving_does(app):
    assert app.request("GET", "/v1/models/mnist") == (200, {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    status, metadata = app.request("GET", "/v1/models/mnist/metadata")
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert status == 200 and metadata["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    [(name, given)] = signature["inputs"].items()
    assert name == "input_layer" and given["dtype"] == "DT_FLOAT"
    assert [dim["size"] for dim in given["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert [dim["size"] for dim in signature["outputs"]["output_0"]["tensor_shape"]["dim"]] == ["-1", "10"]
    assert signature["method_name"] == "tensorflow/serving/predict"


def test_predict_in_row_and_columnar_form_gives_the_model_s_own_probabilities(app, exported):
    root, images, labels, _ = exported
    runner, _ = inference.open_runner(root / "export" / "int8.tflite", threads=2)
    expected = runner.predict(images)
    status, rows = app.predict({"instances": images.tolist()})
    assert status == 200 and np.allclose(rows["predictions"], expected, atol=1e-6)
    assert np.mean(np.argmax(rows["predictions"], axis=1) == labels) > 0.9
    status, columns = app.predict({"inputs": images[:3].tolist()})
    assert status == 200 and np.allclose(columns["outputs"], expected[:3], atol=1e-6)
    status, named = app.predict({"instances": [{"input_layer": image} for image in images[:2].tolist()]})
    assert status == 200 and np.allclose(named["predictions"], expected[:2], atol=1e-6)
    status, versioned = app.request("POST", "/v1/models/mnist/versions/1:predict",
                                       json.dumps({"instances": images[:1].tolist()}))
    assert status == 200 and np.allclose(versioned["predictions"], expected[:1], atol=1e-6)
    examples = [{"input_layer": image} for image in images[:2].tolist()]
    status, classified = app.request("POST", "/v1/models/mnist:classify", json.dumps({"examples": examples}))
    assert status == 200 and [[label for label, _ in ranking] for ranking in classified["result"]] == [
        [str(i) for i in np.argsort(-row, kind="stable")] for row in expected[:2]]
    assert np.allclose([[score for _, score in sorted(ranking, key=lambda pair: int(pair[0]))]
                        for ranking in classified["result"]], expected[:2], atol=1e-6)


def multipart(name, content, field="image"):
    boundary = "mnist-dvc-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_an_image_file_is_answered_as_mnist_predict_answers_it(app, exported, tmp_path):
    root, _, labels, digits = exported
    for i in range(5):
        Image.fromarray(255 - digits[i]).resize((112, 112)).save(tmp_path / f"digit-{i}.png")  # dark on white
        status, answer = app.request("POST", "/v1/images:classify?top=3",
                                        *multipart(f"digit-{i}.png", (tmp_path / f"digit-{i}.png").read_bytes()))
        predicted = subprocess.run([PREDICT, "--json", "--model", str(root / "export" / "int8.tflite"),
                                    str(tmp_path / f"digit-{i}.png")], capture_output=True, text=True, check=True)
        [row] = json.loads(predicted.stdout)
        assert status == 200 and answer == {key: row[key] for key in ("label", "probability", "top")}
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    status, answer = app.request("POST", "/v1/images:classify", *multipart("blank.png",
                                                                            (tmp_path / "blank.png").read_bytes()))
    assert status == 200 and answer["no_ink"].startswith("no ink found")


IMAGE = np.zeros((28, 28, 1)).tolist()
BAD = [
    ("a wrong shape", {"instances": [np.zeros((28, 28)).tolist()]}, 400, "each image must have shape [28, 28, 1]"),
    ("strings", {"instances": [[["0"] * 1] * 28] * 1}, 400, "must hold finite numbers only"),
    ("booleans", {"instances": [[[[True]] * 28] * 28]}, 400, "must hold finite numbers only"),
    ("nulls", {"inputs": [None]}, 400, "must hold finite numbers only"),
    ("ragged images", {"instances": [IMAGE, IMAGE[:3]]}, 400, "all images alike"),
    ("a huge integer", {"instances": [[[[10 ** 400]] * 28] * 28]}, 400, "must hold finite numbers only"),
    ("no images", {"instances": []}, 400, "must be a non-empty list"),
    ("both forms", {"instances": [IMAGE], "inputs": [IMAGE]}, 400, 'either "instances" or "inputs"'),
    ("a list at the top", [IMAGE], 400, 'either "instances" or "inputs"'),
    ("another input name", {"inputs": {"pixels": [IMAGE]}}, 400, 'this model has one input, "input_layer"'),
    ("too many images", {"instances": [[[[0]]]] * 1001}, 400, "at most 1000 a request"),
    ("a null after a named instance", {"instances": [{"input_layer": IMAGE}, None]}, 400, "instances[1]: expected"),
    ("a number after a named instance", {"instances": [{"input_layer": IMAGE}, 5]}, 400, "instances[1]: expected"),
    ("a list after a named instance", {"instances": [{"input_layer": IMAGE}, ["input_layer"]]}, 400,
     "instances[1]: expected"),
]


@pytest.mark.parametrize("body, status, message", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_predict_body_is_a_400_naming_the_problem_and_the_next_request_is_served(app, body, status,
                                                                                          message):
    answer = app.predict(body)
    assert answer[0] == status and message in answer[1]["error"], answer
    assert app.predict({"instances": [IMAGE]})[0] == 200


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/v1/models/mnist:predict", b"{not json", 400, "the body is not JSON"),
    ("POST", "/v1/models/mnist:predict", b"[" * 100_000 + b"]" * 100_000, 400, "the body is not JSON"),
    ("POST", "/v1/models/mnist:predict", b"\xff\xfe", 400, "the body is not JSON"),
    ("POST", "/v1/models/mnist:predict", b" " * (MAX_BODY + 1), 413, f"at most {MAX_BODY} are read"),
    ("POST", "/v1/models/digits:predict", b"{}", 404, 'no model named "digits"'),
    ("GET", "/v1/models/digits", None, 404, 'no model named "digits"'),
    ("GET", "/v1/models/mnist/versions/2", None, 404, 'has no version "2"'),
    ("POST", "/v1/models/mnist:regress", b"{}", 405, "no POST /v1/models/mnist:regress here"),
    ("GET", "/v2/anything", None, 404, "no GET /v2/anything here"),
    ("POST", "/v1/images:classify", b"not a form", 400, "expected a multipart form"),
], ids=["not JSON", "nested 100 000 deep", "not UTF-8", "over the size cap", "unknown model", "unknown model (GET)",
        "unknown version", "unknown method", "unknown path", "not a form"])
def test_a_bad_request_is_a_4xx_in_json_and_the_next_request_is_served(app, method, path, body, status, message):
    answer = app.request(method, path, body)
    assert answer[0] == status and message in answer[1]["error"], answer
    assert app.predict({"instances": [IMAGE]})[0] == 200


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"hello", "not a PNG, JPEG, GIF, BMP, TIFF or WebP image"),
    ("huge.png", None, "pixels is more than the limit"),
])
def test_a_bad_upload_is_a_400_naming_the_file(app, name, content, message):
    from test_photos import png_header_only

    body, headers = multipart(name, content if content is not None else png_header_only(8000, 8000))
    status, answer = app.request("POST", "/v1/images:classify", body, headers)
    assert status == 400 and answer["error"].startswith(f"{name}: ") and message in answer["error"]
    status, answer = app.request("POST", "/v1/images:classify", *multipart("x", b"", field="other"))
    assert status == 400 and "field `image`" in answer["error"]


def raw_exchange(port, data: bytes, seconds=10) -> bytes:
    """What the server sends back on one connection for `data`, until it closes it (or `seconds` pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
        return received


def test_a_request_framed_two_ways_is_refused_and_its_connection_closed_before_what_follows_is_read(server):
    body = json.dumps({"instances": [IMAGE]}).encode()
    smuggled = b"GET /v1/models/mnist HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    both = (b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (len(body), len(body))
            + body + b"\r\n0\r\n\r\n")
    answer = raw_exchange(server.port, both + smuggled)
    assert answer.startswith(b"HTTP/1.1 400") and b"Content-Length and Transfer-Encoding" in answer
    assert answer.count(b"HTTP/1.1") == 1 and not answer.endswith(b"<still open>")  # nothing behind it answered


def drip(port, stop, answers):
    """A client that sends its request line a byte every 0.2 s and records what it gets back."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.settimeout(0.2)
            got = b""
            for byte in b"GET /v1/models/mnist HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 1000:
                if stop.is_set():
                    break
                try:
                    connection.send(bytes([byte]))
                    got += connection.recv(4096)
                    if got and got.endswith(b"\n"):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            answers.append(got)
    except OSError as error:
        answers.append(str(error).encode())


def test_slow_headers_are_cut_off_the_connections_capped_and_well_behaved_clients_served(exported):
    """300 clients dripping their headers at a server allowed 128 open files and 40 connections: each is answered
    503 at once (past the cap) or 408 at the header deadline and closed, the log stays short, and a client that asks
    properly is answered while they drip and after."""
    served = Server(exported[0] / "export" / "int8.tflite", "--header-seconds", "1", "--max-connections", "40",
                    open_files=128)
    stop, answers = threading.Event(), []
    clients = [threading.Thread(target=drip, args=(served.port, stop, answers)) for _ in range(300)]
    try:
        start = time.monotonic()
        for client in clients:
            client.start()
        time.sleep(0.5)
        # past the cap: answered 503 and closed, perhaps while the body was still on its way
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            assert served.predict({"instances": [IMAGE]})[0] in (200, 503)
        for client in clients:
            client.join(timeout=20)
        assert time.monotonic() - start < 15 and len(answers) == 300
        statuses = [answer[:12] for answer in answers]
        assert all(s in (b"HTTP/1.1 408", b"HTTP/1.1 503") for s in statuses), set(statuses)
        assert b"HTTP/1.1 408" in statuses and b"HTTP/1.1 503" in statuses
        assert served.predict({"instances": [IMAGE]})[0] == 200
    finally:
        stop.set()
        output = served.stop()
    assert "Traceback" not in output and len(output.splitlines()) < 20, output[-3000:]


def test_a_big_upload_is_decoded_off_the_event_loop_and_one_past_the_pixel_cap_is_refused_unread(server, tmp_path):
    rng = np.random.default_rng(0)
    big = io.BytesIO()
    blocks = rng.integers(0, 255, (95, 95), dtype=np.uint8)  # 3.6 M pixels that compress to fit the body cap
    Image.fromarray(np.kron(blocks, np.ones((20, 20), np.uint8))).save(big, format="PNG")
    huge = io.BytesIO()
    Image.new("L", (6300, 6300), 255).save(huge, format="PNG")  # 40 M pixels in a few KB

    status, answer = server.request("POST", "/v1/images:classify", *multipart("huge.png", huge.getvalue()))
    assert status == 400 and "6300x6300 pixels is more than the limit of 4000000" in answer["error"]
    results = {}

    def upload():
        results["upload"] = server.request("POST", "/v1/images:classify", *multipart("big.png", big.getvalue()))

    uploading = threading.Thread(target=upload)
    uploading.start()
    time.sleep(0.05)
    waits = []
    while uploading.is_alive():
        start = time.monotonic()
        assert server.request("GET", "/v1/models/mnist")[0] == 200
        waits.append(time.monotonic() - start)
    uploading.join()
    assert results["upload"][0] == 200
    assert waits and max(waits) < 0.5, waits  # status answered while the upload decoded


def test_a_host_it_does_not_answer_to_is_refused(server):
    assert server.request("GET", "/v1/models/mnist", headers={"Host": "evil.example"})[0] == 400
    assert server.request("GET", "/v1/models/mnist", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_a_client_that_sends_its_body_too_slowly_gets_a_408_and_others_are_served_meanwhile(server):
    body = json.dumps({"instances": [IMAGE]}).encode()
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    slow.sendall(b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    assert server.predict({"instances": [IMAGE]})[0] == 200  # served while the slow one waits
    answer = b""
    start = time.monotonic()
    while chunk := slow.recv(4096):
        answer += chunk
    slow.close()
    assert time.monotonic() - start < 5
    assert answer.startswith(b"HTTP/1.1 408") and b'"the body did not arrive within 1 s"' in answer


def test_random_bodies_never_get_a_5xx(app):
    rng = np.random.default_rng(0)
    shapes = [b"{", b'{"instances": ', b'{"inputs": {"input_layer": ', b"[", b'"', b"1e999", b"-", b"null", b"true",
              b"{}", b"[]", b",", b"]", b"}", b'"instances"', b":", b"0.5", b"\xc3\x28"]
    for _ in range(150):
        body = b"".join(shapes[i] for i in rng.integers(0, len(shapes), rng.integers(1, 30)))
        status, answer = app.request("POST", "/v1/models/mnist:predict", body)
        assert 400 <= status < 500 and "error" in answer, (body, status, answer)


def test_a_model_directory_is_served_too(exported):
    root, images, _, _ = exported
    with TestClient(serving_app.app(serving_app.Service(root / "model", "mnist"), MAX_BODY, 1.0)) as client:
        status, rows = Answers(client).predict({"instances": images[:4].tolist()})
    reference = inference.open_runner(root / "model", threads=2)[0].predict(images[:4])
    assert status == 200 and np.allclose(rows["predictions"], reference, atol=1e-5)


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=900,700"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=DriverService(executable_path=shutil.which("chromedriver")))


# Strokes on the 280x280 canvas, as offsets from its centre: a 7 (a bar, then the long diagonal) and a 1.
SEVEN = [[(-60, -80), (60, -80), (-10, 90)]]
ONE = [[(0, -90), (0, 90)]]


def draw(browser, canvas, strokes):
    from selenium.webdriver.common.action_chains import ActionChains

    for stroke in strokes:
        actions = ActionChains(browser, duration=20).move_to_element_with_offset(canvas, *stroke[0]).click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            for t in np.linspace(0, 1, 12)[1:]:  # many small moves, as a hand makes them
                actions.move_to_element_with_offset(canvas, round(x0 + t * (x1 - x0)), round(y0 + t * (y1 - y0)))
        actions.release().perform()


@pytest.fixture
def page(server):
    """Headless Chromium showing the server's page."""
    browser = chromium()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        yield browser
    finally:
        browser.quit()


SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-screenshots"  # what the pages looked like (git ignores it)


def screenshot(browser, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_the_page_answers_the_digit_drawn_on_its_canvas_in_a_real_browser(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    canvas, label = page.find_element(By.ID, "canvas"), page.find_element(By.ID, "label")
    for strokes, digit in ((SEVEN, "7"), (ONE, "1")):
        page.find_element(By.ID, "clear").click()
        assert label.text == "?"
        draw(page, canvas, strokes)
        # "answered" only once no newer drawing waits for its answer, so the rows are final
        WebDriverWait(page, 20).until(lambda _: label.get_attribute("data-state") == "answered")
        assert label.text == digit
        rows = page.find_elements(By.CSS_SELECTOR, "#top .row")
        assert len(rows) == 3 and rows[0].text.startswith(f"{digit} ")
    assert page.find_element(By.ID, "status").text == ""
    assert page.title == "MNIST: ask the model" and "test accuracy" in page.find_element(By.ID, "card").text
    screenshot(page, "mnist-page")


def train_shapes_model(root):
    """The baseline CNN trained briefly on the example folder of RGB shapes, prepared as prepare prepares it."""
    from mnist_pipeline import preparation, prepared

    images = datasets.Images(folder=str(smoke.REPO / "examples/shapes"), title="Shapes", image_shape=(32, 32, 3),
                             test_fraction=0.1, bad_images="error", max_pixels=1_000_000)
    description, _, _ = preparation.prepare_folder(images, preparation.Prepare(val_fraction=0.1, seed=1),
                                                   root / "prepared")
    x, y = prepared.load_split(root / "prepared", "train")
    keras.backend.clear_session()
    model = baseline_model.build_baseline(baseline_model.Baseline(
        conv_filters=(8, 16), kernel_size=3, dense_units=16, dropout=0.0, learning_rate=3e-3), description)
    training.fit(model, x, y, batch_size=16, epochs=3, verbose=0)
    model_files.save(root / "model", model, description)


def test_the_page_of_an_rgb_folder_model_offers_photos_names_its_classes_and_never_says_digit(tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = built_once(tmp_path_factory, "shapes-model", train_shapes_model)
    running = Server(root / "model", "--name", "shapes", name="shapes")
    browser = chromium()
    try:
        browser.get(f"http://127.0.0.1:{running.port}/")
        assert browser.title == "Shapes: ask the model"
        assert not browser.find_element(By.ID, "canvas").is_displayed()  # no canvas: the data is not drawn strokes
        assert "circle, square, triangle" in browser.find_element(By.ID, "classes").text
        circle = sorted((smoke.REPO / "examples/shapes/circle").iterdir())[0]
        browser.execute_script(DROP_FILE.replace("digit.png", "shape.png"),
                               base64.b64encode(circle.read_bytes()).decode())
        label = browser.find_element(By.ID, "label")
        WebDriverWait(browser, 20).until(lambda _: label.get_attribute("data-state") == "answered")
        assert label.text in ("circle", "square", "triangle")
        assert all(row.text.split()[0] in ("circle", "square", "triangle")
                   for row in browser.find_elements(By.CSS_SELECTOR, "#top .row"))
        assert "digit" not in browser.find_element(By.TAG_NAME, "body").text.lower()
        assert "digit" not in browser.page_source.split("<script")[0].lower()
        screenshot(browser, "shapes-page")
    finally:
        browser.quit()
        running.stop()


# In the page: the answer to its first request held back, as a slow network would, until the test calls
# window.releaseFirst(); window.lateAnswerHandled turns true half a second after the page has it, time enough to act.
HOLD_FIRST_ANSWER = """
const realFetch = window.fetch;
let first = true;
window.lateAnswerHandled = false;
window.fetch = async (...args) => {
  const held = first;
  first = false;
  const response = await realFetch(...args);
  if (held) {
    await new Promise((release) => { window.releaseFirst = release; });
    setTimeout(() => { window.lateAnswerHandled = true; }, 500);
  }
  return response;
};
"""
# A PNG file dropped on the drop zone, as a user's drag and drop delivers it.
DROP_FILE = """
const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], "digit.png", {type: "image/png"}));
document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true,
                                                                      cancelable: true}));
"""


def test_a_file_dropped_while_a_drawing_is_asked_keeps_its_answer_when_the_drawing_s_comes_late(page, server,
                                                                                                  exported):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, _, labels, digits = exported
    image = next(i for i, label in enumerate(labels) if label not in (1, 7))  # unlike anything a stroke looks like
    png = io.BytesIO()
    Image.fromarray(255 - digits[image]).resize((112, 112)).save(png, format="PNG")
    status, answer = server.request("POST", "/v1/images:classify", *multipart("digit.png", png.getvalue()))
    assert status == 200 and answer["label"] == str(labels[image])

    canvas, label = page.find_element(By.ID, "canvas"), page.find_element(By.ID, "label")
    page.execute_script(HOLD_FIRST_ANSWER)
    draw(page, canvas, SEVEN)
    WebDriverWait(page, 20).until(lambda _: page.execute_script("return Boolean(window.releaseFirst)"))
    page.execute_script(DROP_FILE, base64.b64encode(png.getvalue()).decode())
    WebDriverWait(page, 20).until(lambda _: label.get_attribute("data-state") == "answered")
    assert label.text == answer["label"]  # the file's answer, while the drawing's is still held back

    page.execute_script("window.releaseFirst()")
    WebDriverWait(page, 20).until(lambda _: page.execute_script("return window.lateAnswerHandled"))
    assert label.get_attribute("data-state") == "answered" and label.text == answer["label"]
    assert page.find_element(By.CSS_SELECTOR, "#top .row").text.startswith(f"{answer['label']} ")


@pytest.mark.parametrize("arguments, message", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--max-connections", "0"], "--max-connections must be at least 1"),
    (["--body-seconds", "nan"], "--body-seconds must be a positive number of seconds"),
    (["--header-seconds", "inf"], "--header-seconds must be a positive number of seconds"),
    (["--name", ""], "a model name is 1-64 letters"),
    (["--name", ".."], "a model name is 1-64 letters"),
    (["--name", "a/b"], "a model name is 1-64 letters"),
    (["--port", "70000"], "--port must be 0-65535"),
], ids=["no threads", "no connections", "nan seconds", "endless headers", "empty name", "dot-dot name", "a slash",
        "port too high"])
def test_a_bad_option_is_one_usage_line_naming_it(capsys, arguments, message):
    from mnist_pipeline import serve

    with pytest.raises(SystemExit) as stopped:
        serve.parse_args(arguments)
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_port_0_serves_on_a_free_port_and_says_which(exported):
    process = subprocess.Popen([SERVE, "--model", str(exported[0] / "export" / "int8.tflite"), "--port", "0"],
                               env=smoke.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert port != 0 and "as model \"mnist\"" in line
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/v1/models/mnist")
        assert connection.getresponse().status == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
