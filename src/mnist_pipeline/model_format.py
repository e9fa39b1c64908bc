"""The files of a model directory, which model_files.py writes and model_loading.py reads."""

ARCHITECTURE_FILE = "model.json"  # Keras' serialization of the network
WEIGHTS_FILE = "model.weights.h5"
