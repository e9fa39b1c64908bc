"""serve: a trained model behind TensorFlow Serving's REST API, on 127.0.0.1 by default (the `mnist-serve` command,
`make serve`). A client written against TensorFlow Serving works unchanged against it:

    GET  /v1/models/<name>                      the model's status
    GET  /v1/models/<name>/metadata             its signature: input and output names, dtypes and shapes
    POST /v1/models/<name>:predict              {"instances": [...]} -> {"predictions": [...]}, or
                                                {"inputs": ...} -> {"outputs": ...}; images as float32 in [0, 1]
    (and the same under /v1/models/<name>/versions/1)

Beside it, POST /v1/images:classify takes an image file (multipart, field `image`), prepares it exactly as
`mnist-predict` does and answers its top classes by name; GET / is a page to draw a digit on, or drop a photo, and
see the top classes as you draw.

The model is the exported int8 .tflite by default, run by LiteRT; --model takes the float32 one or a model
directory. Every request that cannot be answered gets a 4xx with {"error": "..."} naming the problem (a wrong
shape or dtype, a body over --max-body-bytes, something that is not JSON, an unknown model name, a body that does
not arrive within --body-seconds), and the server goes on serving. Inference runs one request at a time in a
worker thread: the interpreters are not thread-safe, and on a small CPU a batch gains nothing from being split."""

import argparse
import asyncio
import io
import json
import math
from importlib import resources

import numpy as np

from . import cli, photos
from .errors import PipelineError

DEFAULT_MODEL = "models/export/int8.tflite"
VERSION = "1"  # the one version served, as TensorFlow Serving numbers them
MAX_BATCH = 1000
FLOAT32_MAX = float(np.finfo(np.float32).max)
OUTPUT_NAME = "output_0"  # what Keras' model.export names the SavedModel's output


class RequestError(Exception):
    """A client's mistake: answered with `status` and {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Service:
    """The model and what the API says about it; `predict` and `classify` raise RequestError for bad input."""

    def __init__(self, model_path, name, threads=None):
        from .predict import Classifier

        self.classifier = Classifier(model_path, threads)
        self.name, self.model_path = name, str(model_path)
        self.description = self.classifier.description
        self.input_name = _input_name(self.classifier.runner)
        self.lock = asyncio.Lock()

    def status(self):
        return {"model_version_status": [{"version": VERSION, "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self):
        def tensor(name, shape):
            return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in shape],
                                                          "unknown_rank": False}, "name": name}

        signature = {"inputs": {self.input_name: tensor(f"serving_default_{self.input_name}:0",
                                                        [-1, *self.description.image_shape])},
                     "outputs": {OUTPUT_NAME: tensor(f"{OUTPUT_NAME}:0", [-1, self.description.num_classes])},
                     "method_name": "tensorflow/serving/predict"}
        return {"model_spec": {"name": self.name, "signature_name": "", "version": VERSION},
                "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}}}

    def images_of(self, body: dict):
        """The float32 batch of a predict request in row ("instances") or columnar ("inputs") format, and which."""
        if not isinstance(body, dict) or len({"instances", "inputs"} & set(body)) != 1:
            raise RequestError(400, 'the request must be a JSON object with either "instances" or "inputs"')
        key = "instances" if "instances" in body else "inputs"
        value = body[key]
        if isinstance(value, dict):  # named inputs: {"inputs": {"input_layer": [...]}}
            value = self._named(value, key)
        elif key == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
            value = [self._named(instance, f"instances[{i}]") for i, instance in enumerate(value)]
        if not isinstance(value, list) or not value:
            raise RequestError(400, f'"{key}" must be a non-empty list of images')
        if len(value) > MAX_BATCH:
            raise RequestError(400, f'"{key}" holds {len(value)} images; at most {MAX_BATCH} a request')
        if not _numbers_only(value):
            raise RequestError(400, f'"{key}" must hold finite numbers only, in nested lists (no strings, booleans '
                                    "or nulls)")
        try:
            images = np.asarray(value, dtype=np.float32)
        except (ValueError, TypeError, OverflowError):
            raise RequestError(400, f'"{key}": each image must be nested lists of shape '
                                    f"{list(self.description.image_shape)}, all images alike") from None
        if images.shape[1:] != tuple(self.description.image_shape):
            raise RequestError(400, f'"{key}": each image must have shape {list(self.description.image_shape)}, got '
                                    f"{list(images.shape[1:])}")
        return images, key

    def _named(self, value, where):
        if set(value) != {self.input_name}:
            raise RequestError(400, f'{where}: this model has one input, "{self.input_name}"; got '
                                    f"{', '.join(map(json.dumps, value)) or 'none'}")
        return value[self.input_name]

    async def predict(self, body):
        images, key = self.images_of(body)
        async with self.lock:
            probabilities = await asyncio.to_thread(self.classifier.runner.predict, images)
        answer = probabilities.astype(float).tolist()
        return {"predictions": answer} if key == "instances" else {"outputs": answer}

    async def classify(self, data: bytes, filename: str, top: int):
        try:
            image = self.classifier.prepare_upload(io.BytesIO(data), filename or "the upload")
        except photos.NoInkError as error:
            return {"no_ink": str(error)}
        except photos.PhotoError as error:
            raise RequestError(400, str(error)) from None
        async with self.lock:
            [answer] = await asyncio.to_thread(self.classifier.classify, [image], top)
        return answer


def _input_name(runner):
    """The served input's name, as TensorFlow Serving shows the exported SavedModel's: its Keras Input's name."""
    model = getattr(runner, "model", None)
    if model is not None:
        return model.inputs[0].name.split(":")[0]
    name = runner.input["name"].split(":")[0]  # LiteRT: serving_default_<name>:0
    return name.removeprefix("serving_default_")


def _numbers_only(value, depth=0):
    """Nested lists (at most 8 deep) of finite numbers that a float32 can hold."""
    if isinstance(value, list):
        return depth < 8 and all(_numbers_only(item, depth + 1) for item in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # An int may be too big for a float (math.isfinite would raise): compare it as it is.
    return (isinstance(value, int) or math.isfinite(value)) and abs(value) <= FLOAT32_MAX


def app(service, max_body_bytes, body_seconds):
    """The Starlette application for `service`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    async def body_of(request: Request) -> bytes:
        """The whole body, refused past max_body_bytes (however the client declares it) or body_seconds."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            raise RequestError(413, f"the body is {declared} bytes; at most {max_body_bytes} are read")
        chunks, size = [], 0

        async def read():
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body_bytes:
                    raise RequestError(413, f"the body is more than {max_body_bytes} bytes")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), body_seconds)
        except TimeoutError:
            raise RequestError(408, f"the body did not arrive within {body_seconds:g} s") from None
        return b"".join(chunks)

    def model_named(name):
        if name != service.name:
            raise RequestError(404, f"no model named {json.dumps(name)} is served here (it serves "
                                    f"{json.dumps(service.name)})")

    async def model(request):
        name, _, method = request.path_params["target"].partition(":")
        version = request.path_params.get("version")
        if version is not None:
            version, _, method = version.partition(":")
            if version != VERSION:
                raise RequestError(404, f"model {json.dumps(name)} has no version {json.dumps(version)} (it has "
                                        f"{VERSION})")
        model_named(name)
        if request.method == "GET" and not method:
            return JSONResponse(service.status())
        if request.method == "POST" and method == "predict":
            try:
                body = json.loads(await body_of(request))
            except (UnicodeDecodeError, ValueError, RecursionError) as error:
                raise RequestError(400, f"the body is not JSON ({type(error).__name__}: {error})") from None
            return JSONResponse(await service.predict(body))
        raise RequestError(404 if request.method == "GET" else 405,
                           f"no {request.method} {request.url.path} here: GET /v1/models/{name}, GET "
                           f"/v1/models/{name}/metadata, POST /v1/models/{name}:predict")

    async def metadata(request):
        model_named(request.path_params["name"])
        return JSONResponse(service.metadata())

    async def classify(request):
        from starlette.datastructures import UploadFile

        data = await body_of(request)
        try:
            form = await Request({**request.scope}, receive=_replay(data)).form(max_files=1, max_fields=4)
        except Exception as error:  # the multipart parser's own errors: a body that is no form
            raise RequestError(400, f"expected a multipart form with an image file in the field `image` "
                                    f"({type(error).__name__}: {error})") from None
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise RequestError(400, "expected a multipart form with an image file in the field `image`")
        top = request.query_params.get("top", "3")
        if not top.isdigit() or not 1 <= int(top) <= service.description.num_classes:
            raise RequestError(400, f"top must be a whole number from 1 to {service.description.num_classes}")
        return JSONResponse(await service.classify(await upload.read(), upload.filename, int(top)))

    async def index(request):
        return HTMLResponse(page)

    async def refused(request, error: RequestError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    async def not_found(request, exc):
        return JSONResponse({"error": f"no {request.method} {request.url.path} here"},
                            status_code=getattr(exc, "status_code", 404))

    return Starlette(routes=[
        Route("/", index),
        Route("/v1/images:classify", classify, methods=["POST"]),
        Route("/v1/models/{name}/metadata", metadata),
        Route("/v1/models/{name}/versions/{version}/metadata", metadata),
        Route("/v1/models/{target}/versions/{version}", model, methods=["GET", "POST"]),
        Route("/v1/models/{target}", model, methods=["GET", "POST"]),
    ], exception_handlers={RequestError: refused, 404: not_found, 405: not_found})


def _replay(data: bytes):
    """An ASGI receive that hands over `data`, already read, as the request's body."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return receive


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH",
                        help=f"a .tflite file or a model directory (default {DEFAULT_MODEL})")
    parser.add_argument("--name", default="mnist", help="the model's name in the URLs (default mnist)")
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8501, help="default 8501, TensorFlow Serving's REST port")
    parser.add_argument("--max-body-bytes", type=int, default=8 << 20, metavar="N",
                        help="refuse larger request bodies (default 8 MiB: about 1 000 images as JSON)")
    parser.add_argument("--body-seconds", type=float, default=10.0, metavar="S",
                        help="refuse a body that takes longer to arrive (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT's threads (default 2)")
    args = parser.parse_args()
    if args.max_body_bytes < 1 or args.body_seconds <= 0 or not 0 <= args.port <= 65535:
        parser.error("--max-body-bytes and --body-seconds must be positive, --port 0-65535")
    return args


def main():
    args = parse_args()
    import uvicorn

    service = Service(args.model, args.name, args.threads)
    if not service.name or "/" in service.name or ":" in service.name:
        raise PipelineError(f"--name {args.name!r}: a model name has no slashes or colons")
    print(f"serve: {service.model_path} ({service.description.title}) as model {json.dumps(service.name)} on "
          f"http://{args.host}:{args.port}/ (page at /, API at /v1/models/{service.name})", flush=True)
    uvicorn.run(app(service, args.max_body_bytes, args.body_seconds), host=args.host, port=args.port,
                log_level="warning", timeout_keep_alive=5)


def command():
    """The mnist-serve entry point."""
    cli.run(main)


if __name__ == "__main__":
    command()
