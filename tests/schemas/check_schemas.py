#!/usr/bin/env python3
"""Holds schemas/*.schema.json to the golden cases the C codec obeys
(tests/unit/test_codec.c reads the same directories):

- every schema is valid JSON Schema 2020-12 with $id, title, description, a
  description on every property, and examples that validate;
- every tests/schemas/valid/<case>/input.json (and output.json, the canonical
  form) validates against the schema its "type" names;
- every tests/schemas/invalid/<case>/input.json is rejected, except malformed
  JSON (its error starts with "<root>: malformed JSON": not a schema matter)
  and cases with a schema-skip file saying why JSON Schema cannot express the
  rule (byte lengths, 1.0 counted as an integer).

Needs python3-jsonschema (Debian: apt-get install python3-jsonschema).
Usage: tests/schemas/check_schemas.py [repository root]; exit status 1 on any
failure.
"""
import json
import pathlib
import sys

from jsonschema import Draft202012Validator

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else __file__).resolve()
if ROOT.is_file():
    ROOT = ROOT.parents[2]
SCHEMAS = ROOT / "schemas"
CASES = ROOT / "tests" / "schemas"


def strict_load(path):
    """Parses like the codec does: duplicate keys and NaN are errors."""

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate object key")
        return dict(pairs)

    def no_constants(name):
        raise ValueError("invalid token " + name)

    text = path.read_bytes().decode("utf-8")
    return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constants)


def undocumented(schema, where):
    """Yields the paths of properties without a description."""
    for group in ("properties", "patternProperties"):
        for name, sub in schema.get(group, {}).items():
            path = f"{where}.{name}" if where else name
            if not isinstance(sub, dict) or not sub.get("description"):
                yield path
            if isinstance(sub, dict):
                yield from undocumented(sub, path)


def load_validators(failures):
    validators = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = strict_load(path)
        name = path.name[: -len(".schema.json")]
        Draft202012Validator.check_schema(schema)
        for key in ("$id", "title", "description"):
            if not schema.get(key):
                failures.append(f"{path.name}: no {key}")
        for prop in undocumented(schema, ""):
            failures.append(f"{path.name}: property {prop} has no description")
        if schema.get("properties", {}).get("type", {}).get("const") != name:
            failures.append(f"{path.name}: type const is not {name!r}")
        validator = Draft202012Validator(schema)
        for i, example in enumerate(schema.get("examples", [])):
            for err in validator.iter_errors(example):
                failures.append(f"{path.name}: example {i}: {err.message}")
        validators[name] = validator
    return validators


def first_error(validators, doc):
    """None when doc is valid, else why not."""
    if not isinstance(doc, dict):
        return "not an object"
    validator = validators.get(doc.get("type"))
    if validator is None:
        return f"no schema for type {doc.get('type')!r}"
    err = next(iter(sorted(validator.iter_errors(doc), key=str)), None)
    return None if err is None else f"{'/'.join(map(str, err.path))}: {err.message}"


def main():
    failures = []
    validators = load_validators(failures)
    if len(validators) != 15:
        failures.append(f"expected 15 schemas, found {len(validators)}")
    checked = skipped = 0

    for case in sorted(p for p in (CASES / "valid").iterdir() if p.is_dir()):
        for file in ("input.json", "output.json"):
            if (case / file).exists():
                why = first_error(validators, strict_load(case / file))
                checked += 1
                if why:
                    failures.append(f"valid/{case.name}/{file} is rejected: {why}")

    for case in sorted(p for p in (CASES / "invalid").iterdir() if p.is_dir()):
        error = (case / "error").read_text().strip()
        if error.startswith("<root>: malformed JSON") or (case / "schema-skip").exists():
            skipped += 1
            continue
        checked += 1
        if first_error(validators, strict_load(case / "input.json")) is None:
            failures.append(f"invalid/{case.name} is accepted (codec says: {error})")

    for failure in failures:
        print("FAIL", failure)
    print(f"check_schemas: {len(validators)} schemas, {checked} cases checked, "
          f"{skipped} skipped (malformed JSON or schema-skip), {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
