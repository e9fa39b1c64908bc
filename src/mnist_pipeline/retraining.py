"""The final model (params retrain): the best hyperparameters' network trained on the train split, behind the
recipe's augmentation, with a cosine learning-rate schedule, an optional moving average of the weights and label
smoothing. The validation split stays out of its training: it draws the validation curve, and the temperature that
calibrates the model's confidence is fitted on it."""

from . import augmentation, cnn, inputs, prepared, training
from .settings import SEED, SUBSET, Bool, Float, Int, Section, Str

EPOCHS = Int(min=1, max=1000)  # params recipes.<dataset>.retrain_epochs


class Retrain(Section):
    train_subset = SUBSET  # 0: all of the train split
    seed = SEED
    augment = Bool()
    lr_schedule = Str(choices=["constant", "cosine"])
    ema_momentum = Float(min=0, max=1, max_exclusive=True)  # 0: off
    label_smoothing = Float(min=0, max=1, max_exclusive=True)  # 0: off


def training_images(data_dir, settings: Retrain):
    """The train split of the prepared data, or the subset params ask for."""
    return prepared.take_subset(*prepared.load_split(data_dir, "train"), settings.train_subset, settings.seed)


def recipe_keys(dataset):
    """The keys of the dataset's recipe retrain reads, and their checks."""
    return {f"recipes.{dataset}.augmentation": augmentation.Augmentation, f"recipes.{dataset}.retrain_epochs": EPOCHS}


def train(x, y, val, hp: cnn.Hyperparameters, description, settings: Retrain, distortion, epochs, callbacks=()):
    """The trained network: `epochs` behind `distortion` (augmentation.Augmentation), validated on `val`."""
    model = cnn.build_from_description(hp, description)
    steps = augmentation.layers_for(distortion) if settings.augment else []
    trainer = augmentation.with_augmentation(model, steps)
    schedule = training.learning_rate_for(settings.lr_schedule, hp.learning_rate, epochs,
                                          inputs.batch_count(len(y), hp.batch_size))
    training.compile_model(trainer, schedule, settings.ema_momentum, settings.label_smoothing)
    training.fit(trainer, x, y, batch_size=hp.batch_size, epochs=epochs, validation_data=val, callbacks=callbacks,
                 seed=settings.seed)
    return model
