"""Property-based fuzzing (Hypothesis) of everything that parses outside input: predict request bodies, params.yaml,
dataset.json, model.json and image files. The property is always the same: a result or one clear error (the
project's PipelineError, or the server's 4xx), never another exception, never a hang. Examples are derandomized, so
a run is repeatable; a failure prints the smallest input that shows it."""

import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mnist_pipeline import photos, prepared, serving_protocol, strict_yaml
from mnist_pipeline import settings as params_settings
from mnist_pipeline.errors import PipelineError

FUZZ = settings(derandomize=True, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SHAPE = (28, 28, 1)
IMAGE = np.zeros(SHAPE).tolist()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=40)
# Bodies near a valid one: the right keys with wrong values, images nested wrong, named inputs mixed with others.
near_bodies = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(st.one_of(json_values, st.just(IMAGE),
                                                           st.fixed_dictionaries({"input_layer": json_values}),
                                                           st.just({"input_layer": IMAGE})), max_size=4)}),
    st.fixed_dictionaries({"inputs": st.one_of(json_values, st.just([IMAGE]),
                                               st.fixed_dictionaries({"input_layer": json_values}))}),
    json_values)


@FUZZ
@given(near_bodies)
def test_a_predict_body_is_a_batch_or_a_4xx(body):
    try:
        images, key = serving_protocol.predict_images(body, "input_layer", SHAPE)
    except serving_protocol.RequestError as error:
        assert 400 <= error.status < 500 and str(error)
    else:
        assert images.dtype == np.float32 and images.shape[1:] == SHAPE and key in ("instances", "inputs")


yaml_texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(["data:", "  dataset: mnist", "prepare:", "  seed: 1", "  val_fraction: 0.1", "- a",
                              "[", "]", "{", "}", "&a x", "*a", "? x", "!!python/object:os.system x", "  seed: 1e999",
                              "\t", "key: key: key", "'", '"', "...", "---", "%YAML 1.1", "a: !!binary AAAA"]),
             max_size=30).map("\n".join))


@FUZZ
@given(yaml_texts)
def test_a_params_file_is_checked_or_one_params_error(tmp_path_factory, text):
    import params_reference

    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(text)
    try:
        params_reference.load(path)
    except params_settings.ParamsError as error:
        assert "\n" not in str(error)


@FUZZ
@given(st.one_of(json_values.map(json.dumps).map(str.encode), st.binary(max_size=200),
                 st.fixed_dictionaries({"name": json_values, "title": json_values, "image_shape": json_values,
                                        "class_names": json_values, "model_files": json_values})
                 .map(json.dumps).map(str.encode)))
def test_a_dataset_json_is_a_description_or_one_error(content):
    try:
        description, files = prepared.parse_description(content, "dataset.json")
    except prepared.DescriptionError as error:
        assert str(error).startswith("dataset.json: ") and "\n" not in str(error)
    else:
        assert description.num_classes >= 2 and isinstance(files, dict)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_strict_yaml_takes_any_bytes_to_a_value_or_one_refusal(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("yaml") / "file.yaml"
    path.write_bytes(content)
    try:
        strict_yaml.load(path)
    except strict_yaml.Refused as error:
        assert str(error).startswith(str(path))


def png(width, height, data=b""):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


def real_image(kind):
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8)).save(out, format=kind)
    return out.getvalue()


SEEDS = [real_image(kind) for kind in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")]


@FUZZ
@given(st.one_of(
    st.binary(max_size=400),
    st.builds(png, st.integers(0, 70000), st.integers(0, 70000), st.binary(max_size=64)),
    st.tuples(st.sampled_from(SEEDS), st.integers(0, 400), st.binary(min_size=1, max_size=8)).map(
        lambda seed: seed[0][:seed[1]] + seed[2] + seed[0][seed[1] + len(seed[2]):]),
    st.tuples(st.sampled_from(SEEDS), st.integers(0, 400)).map(lambda seed: seed[0][:seed[1]])))
def test_an_image_file_is_an_image_or_one_photo_error(content):
    try:
        pixels = photos.decode(io.BytesIO(content), "upload.png", lambda image: photos.to_pixels(image, (16, 16, 3)),
                               max_pixels=1_000_000)
    except photos.PhotoError as error:
        assert str(error).startswith("upload.png: ")
    else:
        assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8


architectures = st.one_of(
    json_values,
    st.fixed_dictionaries({"module": st.sampled_from(["keras", "keras.layers", "builtins", "os", "keras.src.ops"]),
                           "class_name": st.sampled_from(["Sequential", "Dense", "Lambda", "eval", "system",
                                                          "InputLayer", "Functional"]),
                           "config": json_values, "registered_name": st.none() | st.text(max_size=10)}))


@pytest.fixture(scope="module")
def keras_ready():
    from helpers import start_runtime

    start_runtime()


@settings(derandomize=True, deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(architectures)
def test_a_model_json_builds_a_model_or_is_one_model_file_error(keras_ready, tmp_path_factory, architecture):
    from mnist_pipeline import model_files, model_loading

    directory = tmp_path_factory.mktemp("model")
    (directory / model_files.ARCHITECTURE_FILE).write_text(json.dumps(architecture))
    (directory / model_files.WEIGHTS_FILE).write_bytes(b"not h5")
    model_files.describe(directory, prepared.Description("mnist", "MNIST", SHAPE, tuple("0123456789")),
                         [model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE])
    with pytest.raises(PipelineError):  # nothing here is a whole model: each must be refused in one line
        model_loading.load(directory)
