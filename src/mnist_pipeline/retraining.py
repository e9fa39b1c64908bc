"""The final model (params retrain): the best hyperparameters' network trained on all the training images (train and
validation together), behind the recipe's augmentation, with a cosine learning-rate schedule, an optional moving
average of the weights and label smoothing."""

import numpy as np

from . import augmentation, cnn, inputs, prepared, training
from .settings import SEED, SUBSET, Bool, Float, Int, Section, Str

EPOCHS = Int(min=1, max=1000)  # params recipes.<dataset>.retrain_epochs


class Retrain(Section):
    train_subset = SUBSET  # 0: all of train + val
    seed = SEED
    augment = Bool()
    lr_schedule = Str(choices=["constant", "cosine"])
    ema_momentum = Float(min=0, max=1, max_exclusive=True)  # 0: off
    label_smoothing = Float(min=0, max=1, max_exclusive=True)  # 0: off


def training_images(data_dir, settings: Retrain):
    """All the training images of the prepared data (train + val), or the subset params ask for."""
    train, val = prepared.load_split(data_dir, "train"), prepared.load_split(data_dir, "val")
    x, y = np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
    del train, val
    return prepared.take_subset(x, y, settings.train_subset, settings.seed)


def recipe_keys(dataset):
    """The keys of the dataset's recipe retrain reads, and their checks."""
    return {f"recipes.{dataset}.augmentation": augmentation.Augmentation, f"recipes.{dataset}.retrain_epochs": EPOCHS}


def train(x, y, hp: cnn.Hyperparameters, description, settings: Retrain, distortion, epochs):
    """(the trained network, its fit history): `epochs` behind `distortion` (augmentation.Augmentation)."""
    model = cnn.build_from_description(hp, description)
    steps = augmentation.layers_for(distortion) if settings.augment else []
    trainer = augmentation.with_augmentation(model, steps)
    schedule = training.learning_rate_for(settings.lr_schedule, hp.learning_rate, epochs,
                                          inputs.batch_count(len(y), hp.batch_size))
    training.compile_model(trainer, schedule, settings.ema_momentum, settings.label_smoothing)
    history = training.fit(trainer, x, y, batch_size=hp.batch_size, epochs=epochs)
    return model, history
