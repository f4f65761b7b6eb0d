"""``embodied-transfer grasp ...``: export, train, evaluate, simulate-trials (argparse glue)."""
from __future__ import annotations

import argparse
from dataclasses import fields

from embodied_transfer.app.graph_commands import graph_args, run_graph
from embodied_transfer.app.output import write_json
from embodied_transfer.grasp.errors import GraspError
from embodied_transfer.grasp.reasoning import ANSWER_FORMATS


def add_parsers(sub) -> None:
    """The ``grasp`` command group on the top-level subparsers."""
    from embodied_transfer.grasp.backends import BACKENDS

    grasp = sub.add_parser("grasp", help="grasp reasoning: data, training, evaluation, trials")
    grasp.set_defaults(run=run)
    gsub = grasp.add_subparsers(dest="grasp_command", required=True)

    export = gsub.add_parser("export", help="render MuJoCo tabletop scenes as Cornell datasets "
                                            "(OUT/plain and OUT/instructed)")
    export.add_argument("--out", required=True)
    export.add_argument("--scenes", type=int, default=100)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--width", type=int, default=320)
    export.add_argument("--height", type=int, default=240)
    export.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")
    export.add_argument("--randomise", action="store_true",
                        help="domain randomisation: a random look (lights, table, camera, "
                             "shades, distractors) and image size per scene")
    export.add_argument("--keep-size", action="store_true",
                        help="with --randomise: keep --width/--height (e.g. for a model "
                             "trained at one size)")

    train = gsub.add_parser("train", help="train a backend on a Cornell-layout dataset")
    train.add_argument("--backend", choices=BACKENDS, required=True)
    train.add_argument("--dataset", nargs="+", default=[],
                       help="training dataset dir(s) (rendered tabletop scenes)")
    train.add_argument("--real", nargs="+", default=[], metavar="DIR",
                       help="cnn: real camera dataset dir(s) (Cornell layout), fine-tuned on "
                            "with strong augmentation, every batch half real when --dataset "
                            "is given too")
    workspace_arg(train, "cnn: the part of the --real images the network sees")
    train.add_argument("--depth-centre", choices=("mean", "median"), default=None,
                       help="cnn: depth normalised around its mean or median (robust to "
                            "walls and floor far behind the table)")
    train.add_argument("--val", help="validation dataset (cnn: picks the best epoch; tiny-vlm: "
                                     "scores the vision pre-training)")
    train.add_argument("--out", required=True, help="output model (or adapter) directory")
    train.add_argument("--model", default="",
                       help="vlm: base model dir or hub id to LoRA-tune")
    train.add_argument("--allow-download", action="store_true")
    train.add_argument("--numbers-only", action="store_true",
                       help="tiny-vlm/vlm: answers without reasoning (the ablation)")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--vision-epochs", type=int, default=None,
                       help="tiny-vlm: epochs of vision-tower pre-training on the scenes' "
                            "object metadata, then the tower stays frozen (0: none, the "
                            "tower is trained end to end with the rest; default 20)")
    train.add_argument("--vision-layers", type=int, default=None,
                       help="tiny-vlm: layers of the vision tower (default 4)")
    train.add_argument("--vision-dataset", nargs="+", default=None,
                       help="tiny-vlm: further dataset dir(s) whose object metadata the vision "
                            "pre-training also sees (scenes only, no answers)")
    train.add_argument("--unfreeze-epochs", type=int, default=None,
                       help="tiny-vlm, after --vision-epochs: further epochs with every weight "
                            "trained, at half the learning rate (default 2)")
    train.add_argument("--init", default="",
                       help="tiny-vlm: continue from this trained tiny VLM (its tokenizer, "
                            "processor and weights; every weight trained, no stage 0); cnn: "
                            "start from this cnn model (e.g. the tabletop one)")
    train.add_argument("--number-tokens", action=argparse.BooleanOptionalAction, default=None,
                       help="tiny-vlm: every whole number 0-999 one token in the built "
                            "tokenizer, instead of one token per digit")
    train.add_argument("--answer-format", choices=ANSWER_FORMATS, default=None,
                       help="reasoning: list every object in reading order and place the "
                            "named one again (restate), or list in reading order up to the "
                            "named object and mark it (scan)")

    evaluate = gsub.add_parser("evaluate", help="rectangle (and target) accuracy on a dataset")
    _backend_args(evaluate)
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--json", help="write the result here")
    evaluate.add_argument("--png", help="draw predicted vs true rectangles for a sample here")
    evaluate.add_argument("--limit", type=int, default=None, help="first N samples only")
    evaluate.add_argument("--folds", type=int, default=0, metavar="K",
                          help="cnn on a real dataset: object-wise K-fold cross-validation "
                               "(fine-tune --model, default the shipped tabletop cnn, on K-1 "
                               "folds, score the held-out one; pooled over the folds)")
    evaluate.add_argument("--groups", default=None, metavar="FILE",
                          help="--folds: which images show which object ('pcdNNNN[-pcdNNNN] "
                               "name' lines; default DATASET/objects.txt, else consecutive "
                               "ids in contiguous blocks)")
    evaluate.add_argument("--epochs", type=int, default=60,
                          help="--folds: fine-tuning epochs per fold")
    evaluate.add_argument("--sim", nargs="+", default=None, metavar="DIR",
                          help="--folds: rendered scenes mixed into every batch (half)")

    trials = gsub.add_parser("simulate-trials", help="execute predicted grasps in MuJoCo")
    _backend_args(trials)
    trials.add_argument("--trials", type=int, default=50)
    trials.add_argument("--seed", type=int, default=10_000,
                        help="scene seed (training data uses 0, held-out tests 1)")
    trials.add_argument("--randomise", action="store_true",
                        help="scenes under random looks (see 'grasp export --randomise')")
    trials.add_argument("--json", help="write the result here")

    serve = gsub.add_parser("serve", help="bring up grasp_reasoning for a real camera "
                                          "(graph 'grasp')")
    graph_args(serve)


#: The backend options of ``evaluate`` and ``simulate-trials``: flag → the grasp_reasoning
#: setting it mirrors (its default, choices and help come from GraspNodeConfig).
BACKEND_FLAGS = {"--backend": "backend", "--model": "model_path", "--adapter": "adapter_path",
                 "--allow-download": "allow_download", "--decoding": "decoding",
                 "--views": "views", "--refine": "refine", "--refine-model": "refine_model_path",
                 "--refine-radius": "refine_radius_px"}


def workspace_arg(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workspace", nargs=4, type=float, default=None,
                        metavar=("X0", "Y0", "X1", "Y1"),
                        help=f"{what}: fractions of the image's width and height (a fixed "
                             "region of the camera's view, never the labels; default: the "
                             "whole image)")


def _backend_args(parser: argparse.ArgumentParser) -> None:
    from embodied_transfer.core.config import settings
    from embodied_transfer.grasp.config import GraspNodeConfig

    node = {item.name: item for item in settings(GraspNodeConfig)}
    for flag, name in BACKEND_FLAGS.items():
        item = node[name]
        kwargs = {"help": item.doc}
        if item.kind is bool:
            kwargs["action"] = "store_true"
        elif "" in item.choices:        # "": the backend's default, i.e. the flag left out
            kwargs.update(default=None, choices=[c for c in item.choices if c])
        else:
            bounded = item.kind is int and item.high is not None
            kwargs.update(type=item.kind, default=item.default,
                          choices=(range(int(item.low), int(item.high) + 1) if bounded
                                   else item.choices or None))
        parser.add_argument(flag, **kwargs)
    workspace_arg(parser, "cnn (as backend or refiner)")


def _load(args):
    from embodied_transfer.grasp.backends import load_backend

    return load_backend(args.backend, args.model, adapter=args.adapter,
                        allow_download=args.allow_download, decoding=args.decoding,
                        views=args.views or None, refine=args.refine,
                        refine_model=args.refine_model, refine_radius_px=args.refine_radius,
                        workspace=args.workspace)


def _cross_validate(args, dataset) -> int:
    """``grasp evaluate --folds K``: object-wise cross-validation of cnn fine-tuning."""
    from embodied_transfer.grasp.backends import TABLETOP_CNN
    from embodied_transfer.grasp.cornell import read_dataset
    from embodied_transfer.grasp.folds import cross_validate_cnn, dataset_groups

    if args.backend != "cnn":
        raise GraspError("--folds fine-tunes and scores the cnn backend (--backend cnn)")
    groups = dataset_groups(dataset, args.groups)
    sim = [read_dataset(d) for d in args.sim] if args.sim else None
    result = cross_validate_cnn(dataset, args.folds, groups=groups, sim_data=sim,
                                init=args.model or TABLETOP_CNN,
                                workspace=args.workspace, epochs=args.epochs, progress=True)
    out = {"backend": "cnn", "model": args.model or "(shipped)", "dataset": str(args.dataset),
           "workspace": args.workspace, **result}
    kind = "object-wise" if result["object_wise"] else "contiguous-block"
    print(f"cnn, {kind} {args.folds}-fold cross-validation: rectangle accuracy "
          f"{result['rectangle_accuracy'] * 100:.1f} % on {result['n']} images ("
          + ", ".join(f"{(f['rectangle_accuracy'] or 0) * 100:.0f} %" for f in result["per_fold"])
          + " per fold)")
    write_json(args.json, out)
    return 0


def run(args) -> int:
    """Dispatch ``embodied-transfer grasp <command>``."""
    if args.grasp_command == "export":
        from embodied_transfer.grasp.synthetic import export_dataset

        counts = export_dataset(args.out, args.scenes, args.seed, width=args.width,
                                height=args.height, workers=args.workers or None,
                                randomise=args.randomise, random_size=not args.keep_size)
        print(f"wrote {counts['plain']} samples to {args.out}/plain and "
              f"{counts['instructed']} to {args.out}/instructed")
        return 0
    if args.grasp_command == "train":
        from embodied_transfer.grasp.training import GraspTrainConfig, train

        out = train(GraspTrainConfig(**{f.name: getattr(args, f.name)
                                        for f in fields(GraspTrainConfig)}))
        print(f"wrote {out}")
        return 0
    if args.grasp_command == "evaluate":
        from embodied_transfer.grasp.backends.refined import RefinedBackend
        from embodied_transfer.grasp.cornell import read_dataset
        from embodied_transfer.grasp.evaluate import draw_samples, evaluate, summary

        dataset = read_dataset(args.dataset)
        if args.folds:
            return _cross_validate(args, dataset)
        backend = _load(args)
        result = evaluate(dataset, backend, limit=args.limit)
        out = {"backend": args.backend, "model": args.model or "(shipped)",
               "dataset": str(args.dataset), **summary(result),
               "refine": "cnn" if isinstance(backend, RefinedBackend) else "none"}
        acc = out["rectangle_accuracy"]
        target = out.get("target_accuracy")
        print(f"{out['backend']}: rectangle accuracy {acc * 100:.1f} % on {out['n']} images"
              + (f", target accuracy {target * 100:.1f} %" if target is not None else "")
              + f", {out['ms_per_image']:.1f} ms per image, {out['parse_failures']} without a "
                "grasp")
        if out.get("decoding") == "consistent":
            print(f"consistent decoding: the restated position held to the listed one in "
                  f"{out['restatements_held']} of {out['n'] * out['views']} answers "
                  f"({out['views']} view{'s' if out['views'] > 1 else ''} per image)")
        if out.get("scene_reading"):
            r = out["scene_reading"]
            print(f"scene reading: {r['placed'] * 100:.1f} % of {r['objects']} objects placed "
                  f"within 20 px, of those colour {r['colour'] * 100:.1f} % and category "
                  f"{r['category'] * 100:.1f} % right; object count right in "
                  f"{r['count'] * 100:.1f} % of {r['answers']} answers"
                  + (f"; the named object's position copied from the list in "
                     f"{r['named_copied'] * 100:.1f} %" if r["named_copied"] is not None else "")
                  + (f"; the grasp follows the named object's listed position in "
                     f"{r['grasp_follows_list'] * 100:.1f} %"
                     if r["grasp_follows_list"] is not None else ""))
        write_json(args.json, out)
        if args.png:
            draw_samples(dataset, dict(zip(result["ids"], result["predictions"])), args.png)
            print(f"wrote {args.png}")
        return 0
    if args.grasp_command == "simulate-trials":
        from embodied_transfer.grasp.synthetic import simulate_trials

        result = simulate_trials(_load(args), args.trials, args.seed,
                                 randomise=args.randomise)
        print(f"{result['backend']}: {result['success_rate'] * 100:.1f} % of {result['trials']} "
              f"executed grasps succeeded (target lifted: "
              f"{result['target_success_rate'] * 100:.1f} %, no grasp: {result['no_grasp']})")
        write_json(args.json, result)
        return 0
    if args.grasp_command == "serve":
        return run_graph("grasp", args)
    raise GraspError(f"unknown grasp command {args.grasp_command!r}")
