"""Why models/export is byte-stable on one CPU kind but not across kinds: the int8 model's activation ranges are
measured by running the float32 model through TFLite's kernels, and which kernels run is decided at run time by the
CPU. This runs models/export/float32.tflite on export's calibration images through each of LiteRT's op resolvers
(XNNPACK, the optimized built-in kernels, the reference kernels) and says whether their outputs are bit-identical.
Usage, after `make repro`: python tools/tflite_kernels.py [--model models/export/float32.tflite]"""

import argparse

import numpy as np

from mnist_pipeline import cli, inputs, prepared, settings
from mnist_pipeline.export import Export

RESOLVERS = ("BUILTIN", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF")


def outputs(path, images, resolver):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), num_threads=1,
                              experimental_op_resolver_type=getattr(OpResolverType, resolver))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(given["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(taken["index"]).copy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/export/float32.tflite")
    parser.add_argument("--data", default="data/prepared")
    args = parser.parse_args()
    export = settings.load(export=Export)
    images, _ = prepared.take_subset(*prepared.load_split(args.data, "train"), export.representative_images,
                                     export.seed)
    images = inputs.scaled(images)
    reference = outputs(args.model, images, "BUILTIN_REF")
    for resolver in RESOLVERS:
        found = outputs(args.model, images, resolver)
        print(f"{resolver}: bit-identical to the reference kernels: {np.array_equal(found, reference)}, "
              f"largest difference {float(np.abs(found - reference).max()):.3g}")


if __name__ == "__main__":
    cli.run(main)
