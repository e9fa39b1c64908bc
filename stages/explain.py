"""explain: feature-map figures of the tuned model: its first layer's filters, and for the first test image of each
class the activations of every convolutional block (the channels most active on those images)."""

from pathlib import Path

from mnist_pipeline import cli, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "model", "data", "figures", "timing")
    runtime.start(settings.load(runtime=runtime.Runtime))
    runtime.seed(1)  # inference draws no random numbers; threads matter
    from mnist_pipeline import feature_maps, inputs, model_loading, plots

    explain = settings.load(explain=feature_maps.Explain)
    description = prepared.load_description(args.data)
    clock = cli.Stopwatch()
    model, _ = model_loading.load(args.model, expected=description)
    x_test, y_test = prepared.load_split(args.data, "test")
    shown = feature_maps.one_per_class(y_test, description.num_classes)
    images, labels = inputs.scaled(x_test[shown]), y_test[shown]
    plots.save(plots.filters(feature_maps.first_filters(model), "tuned"), Path(args.figures, "filters.png"))
    for block, (layer, maps) in enumerate(feature_maps.activations(model, images).items(), start=1):
        channels = feature_maps.most_active(maps, explain.channels_shown)
        title = (f"tuned: block {block} ({layer}, {maps.shape[1]}x{maps.shape[2]}x{maps.shape[3]}), "
                 f"the {len(channels)} most active channels")
        plots.save(plots.activations(images, labels, maps, channels, description.class_names, title),
                            Path(args.figures, f"block{block}_activations.png"))
    clock.mark("explain_seconds")
    clock.write(args.timing)
    print(f"explain: filters and {block} block(s) of activations drawn in {args.figures}")


if __name__ == "__main__":
    cli.run(main)
