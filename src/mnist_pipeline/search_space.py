"""What a search trial samples and builds: the recipe's ranges declared on Keras Tuner's HyperParameters, and the
tunable CNN as a Keras Tuner HyperModel that trains the way retrain does."""

import keras
import keras_tuner as kt

from . import augmentation, cnn, inputs, training

EPOCHS_TRAINED = "epochs_trained"


def declare_search_space(space: dict) -> kt.HyperParameters:
    """A HyperParameters object holding every range of the recipe's space; the tuner samples from it and no other."""
    hp = kt.HyperParameters()
    for name, spec in space.items():
        if "choice" in spec and len(spec["choice"]) == 1:
            hp.Fixed(name, spec["choice"][0])
        elif "choice" in spec and isinstance(spec["choice"][0], bool):
            hp.Boolean(name, default=spec["choice"][0])  # Choice would turn booleans into 0 and 1
        elif "choice" in spec:
            hp.Choice(name, spec["choice"])
        else:
            kind = hp.Int if isinstance(spec["min"], int) else hp.Float
            kind(name, spec["min"], spec["max"], step=spec.get("step"),
                 sampling="log" if spec.get("log") else "linear")
    return hp


class CnnHyperModel(kt.HyperModel):
    """cnn.build_cnn_model for the tuner. A trial may train the way retrain does: behind the recipe's augmentation
    (`augmentation_settings`, or None) and with the learning rate following `lr_schedule` over each fit (a trial, or a
    round of Hyperband)."""

    def __init__(self, description, augmentation_settings=None, lr_schedule="constant"):
        super().__init__()
        self.description = description
        self.augmentation, self.lr_schedule = augmentation_settings, lr_schedule
        self.policy = keras.mixed_precision.global_policy().name  # runtime.precision, as runtime.start set it

    def build(self, hp):
        # Keras Tuner calls clear_session() before every build, and that resets Keras' dtype policy to float32.
        keras.mixed_precision.set_global_policy(self.policy)
        model = cnn.build_from_description(hp, self.description)
        if not self.augmentation:
            return model
        # Part of the model the tuner checkpoints, so that a Hyperband round resumes the same network. Validation
        # images pass through it unchanged.
        trainer = augmentation.with_augmentation(model, augmentation.layers_for(self.augmentation))
        return training.compile_model(trainer, hp.get("learning_rate"))

    def fit(self, hp, model, x, y, **kwargs):
        if self.lr_schedule != "constant":
            steps = inputs.batch_count(len(y), hp.get("batch_size"))
            epochs = kwargs["epochs"] - kwargs.get("initial_epoch", 0)
            training.compile_model(model, training.learning_rate_for(self.lr_schedule, hp.get("learning_rate"),
                                                                     epochs, steps))
        try:
            history = training.fit(model, x, y, batch_size=hp.get("batch_size"), **kwargs)
        except training.NonFiniteLossError as error:
            raise kt.errors.FailedTrialError(str(error)) from None
        # The tuner keeps only the best epoch's metrics; a constant column carries the epoch count into trial.json.
        history.history[EPOCHS_TRAINED] = [len(history.epoch)] * len(history.epoch)
        return history
