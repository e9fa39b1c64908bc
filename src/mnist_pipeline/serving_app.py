"""The server's application: a trained model behind TensorFlow Serving's REST API (serving_protocol.py), an endpoint
for image files and a page, as a Starlette app that tests drive in-process. serve.py runs it under uvicorn.

Beside the API, POST /v1/images:classify takes an image file (multipart, field `image`), prepares it exactly as
`mnist-predict` does and answers its top classes by name; GET / is a page to draw on, or drop a photo, and see the
top classes. Every request that cannot be answered gets a 4xx with {"error": "..."} naming the problem. Inference
runs one request at a time in a worker thread: the interpreters are not thread-safe, and on a small CPU a batch gains
nothing from being split."""

import asyncio
import io
import json
from importlib import resources

from . import photos
from .predict import Classifier
from .serving_protocol import (
    VERSION,
    RequestError,
    classify_answer,
    classify_images,
    metadata,
    predict_answer,
    predict_images,
    status,
)


class Service:
    """The model served and what the API says about it. `name` (its name in the URLs) defaults to its dataset's."""

    def __init__(self, model_path, name=None, threads=None, max_pixels=photos.MAX_PIXELS):
        self.classifier = Classifier(model_path, threads)
        self.description = self.classifier.description
        self.name, self.model_path = name or self.description.name, str(model_path)
        self.input_name = self.classifier.runner.input_name
        self.max_pixels = max_pixels
        self.lock = asyncio.Lock()

    async def probabilities(self, images):
        """The model's calibrated class probabilities (its temperature applied), one request at a time."""
        async with self.lock:
            return await asyncio.to_thread(self.classifier.probabilities, images)

    async def predict(self, body):
        images, key = predict_images(body, self.input_name, self.description.image_shape)
        return predict_answer(await self.probabilities(images), key)

    async def classify_examples(self, body):
        images = classify_images(body, self.input_name, self.description.image_shape)
        return classify_answer(await self.probabilities(images), self.description.class_names)

    def page_info(self) -> dict:
        """What the page shows of the model: its dataset's title and classes, whether it takes drawings, its card."""
        return {"name": self.name, "title": self.description.title, "class_names": list(self.description.class_names),
                "draw": self.classifier.takes_drawings, "card": self.classifier.model_card()}

    async def classify(self, data: bytes, filename: str, top: int):
        """The top classes of an uploaded image file, decoded in a worker thread (a big image takes seconds, and the
        event loop serves everyone else meanwhile) under the server's pixel cap."""
        try:
            image = await asyncio.to_thread(self.classifier.prepare_upload, io.BytesIO(data),
                                            filename or "the upload", self.max_pixels)
        except photos.NoInkError as error:
            return {"no_ink": str(error)}
        except photos.PhotoError as error:
            raise RequestError(400, str(error)) from None
        async with self.lock:
            [answer] = await asyncio.to_thread(self.classifier.classify, [image], top)
        return answer


def app(service, max_body_bytes, body_seconds, allowed_hosts=("*",)):
    """The Starlette application for `service`, answering requests whose Host is one of `allowed_hosts`."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8").replace(
        '<script id="model-info" type="application/json">{}</script>',
        f'<script id="model-info" type="application/json">{_script_json(service.page_info())}</script>')

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
            return JSONResponse(status())
        if request.method == "POST" and method in ("predict", "classify"):
            try:
                body = json.loads(await body_of(request))
            except (UnicodeDecodeError, ValueError, RecursionError) as error:
                raise RequestError(400, f"the body is not JSON ({type(error).__name__}: {error})") from None
            answer = service.predict(body) if method == "predict" else service.classify_examples(body)
            return JSONResponse(await answer)
        raise RequestError(404 if request.method == "GET" else 405,
                           f"no {request.method} {request.url.path} here: GET /v1/models/{name}, GET "
                           f"/v1/models/{name}/metadata, POST /v1/models/{name}:predict, POST "
                           f"/v1/models/{name}:classify")

    async def model_metadata(request):
        model_named(request.path_params["name"])
        return JSONResponse(metadata(service.name, service.input_name, service.description,
                                     service.classifier.model_card()))

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
        # A body refused part-read leaves the rest of it on the connection, where it must not be read as a request.
        unread = {"connection": "close"} if error.status in (408, 413) else None
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=unread)

    async def not_found(request, exc):
        return JSONResponse({"error": f"no {request.method} {request.url.path} here"},
                            status_code=getattr(exc, "status_code", 404))

    return Starlette(middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
                                 Middleware(OneFraming)], routes=[
        Route("/", index),
        Route("/v1/images:classify", classify, methods=["POST"]),
        Route("/v1/models/{name}/metadata", model_metadata),
        Route("/v1/models/{name}/versions/{version}/metadata", model_metadata),
        Route("/v1/models/{target}/versions/{version}", model, methods=["GET", "POST"]),
        Route("/v1/models/{target}", model, methods=["GET", "POST"]),
    ], exception_handlers={RequestError: refused, 404: not_found, 405: not_found})


class OneFraming:
    """RFC 9112 6.3: a request with both Content-Length and Transfer-Encoding is how requests are smuggled past a
    proxy that frames them the other way; it is answered 400 and its connection closed, so nothing sent behind it on
    the connection is read as a request of its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        names = {name for name, _ in scope.get("headers", ())} if scope["type"] == "http" else set()
        if {b"content-length", b"transfer-encoding"} <= names:
            body = json.dumps({"error": "the request has both Content-Length and Transfer-Encoding: refused"})
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


def _script_json(value) -> str:
    """JSON safe inside an HTML <script> element: nothing in it can close the element or open a comment."""
    text = json.dumps(value)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


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
