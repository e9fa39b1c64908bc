"""What the two CNNs share: the values their layers may take, and the softmax head."""

from keras import layers

from .settings import Float, Int

FILTERS = Int(min=1, max=1024)
KERNEL = Int(min=1, max=7, odd=True)  # odd, so a kernel is centred on its pixel; small, so it fits a 7x7 map
UNITS = Int(min=1, max=4096)
DROPOUT = Float(min=0, max=1, max_exclusive=True)
LEARNING_RATE = Float(min=0, min_exclusive=True)


def output_layer(num_classes):
    # In float32 under any dtype policy: a bf16 softmax rounds small probabilities to 0 and the loss with them.
    return layers.Dense(num_classes, activation="softmax", dtype="float32")
