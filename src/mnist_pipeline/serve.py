"""serve: a trained model behind TensorFlow Serving's REST API, on 127.0.0.1 by default (the `mnist-serve` command,
`make serve`). A client written against TensorFlow Serving works unchanged against it (serving_protocol.py); beside
it, an endpoint for image files and a page (serving_app.py).

The model is the exported int8 .tflite by default, run by LiteRT; --model takes the float32 one or a model
directory. Every request that cannot be answered gets a 4xx with {"error": "..."} naming the problem (a wrong
shape or dtype, a body over --max-body-bytes, something that is not JSON, an unknown model name, a body that does
not arrive within --body-seconds), and the server goes on serving."""

import argparse
import json

from . import cli
from .errors import PipelineError

DEFAULT_MODEL = "models/export/int8.tflite"


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

    from .serving_app import Service, app

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
