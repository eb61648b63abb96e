#!/usr/bin/env python3
"""Writes one ConfigMap per model version of a model repository, as YAML.

    python3 deploy/k8s/models-configmaps.py models > /tmp/triad-models.yaml
    kubectl apply -f /tmp/triad-models.yaml

Name: triad-model-<model>-<version> (underscores become dashes); keys are
the version directory's file names (text as data, binary such as
model.onnx as binaryData). score.yaml and monitor.yaml map the keys back to
<model>/<version>/<file> in a projected volume at /models. Training scripts,
caches and timing notes are left out, as in the images.
"""
import base64
import json
import pathlib
import sys

LIMIT = 1_000_000  # a ConfigMap must stay under 1 MiB


def skip(path: pathlib.Path) -> bool:
    return path.suffix in {".py", ".pyc"} or "timing" in path.name


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    docs = []
    for model in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        for version in sorted(p for p in model.iterdir() if p.is_dir() and not p.name.startswith(".")):
            data, binary, size = {}, {}, 0
            for f in sorted(version.iterdir()):
                if not f.is_file() or skip(f):
                    continue
                raw = f.read_bytes()
                size += len(raw)
                try:
                    data[f.name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    binary[f.name] = base64.b64encode(raw).decode()
            if size > LIMIT:
                print(f"error: {version} is {size} bytes, over a ConfigMap's 1 MiB: use a volume", file=sys.stderr)
                return 1
            name = f"triad-model-{model.name}-{version.name}".replace("_", "-").lower()
            doc = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": "triad",
                    "labels": {
                        "app.kubernetes.io/part-of": "triad",
                        "triad.dev/model": model.name,
                        "triad.dev/version": version.name,
                    },
                },
                # A model version directory is immutable once loaded.
                "immutable": True,
                "data": data,
            }
            if binary:
                doc["binaryData"] = binary
            docs.append(doc)
    # JSON is YAML: no PyYAML needed.
    sys.stdout.write("\n---\n".join(json.dumps(d, indent=1) for d in docs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
