#!/usr/bin/env python3
"""Validates FHIR R4 Questionnaire and QuestionnaireResponse resources written by Tsunagu.

Usage:
    validate.py [--context DIR]... [--expect-invalid] PATH...

Every PATH is a JSON file or a directory of them (*.json). Each resource is checked with:

1. the FHIR R4 (4.0.1) models of `fhir.resources` (see requirements.txt): element names,
   cardinalities, data types, primitive formats, choice types ([x]) and required elements;
2. rules the models do not enforce: no empty strings, arrays, objects or nulls; codes from
   their required value sets; a dateTime/instant with a time has a time zone; extensions
   have a url and either a value or extensions (ext-1);
3. the Questionnaire invariants que-0 .. que-13 that apply, unique linkIds and enableWhen
   questions that exist, with answers of the question's type;
4. for a QuestionnaireResponse, qrs-1 and qrs-2, and the response against its Questionnaire
   (found by `url|version` among the files and the --context directories): every item in
   the questionnaire's order and shape, answers of the item's type and from its options, no
   answers to disabled items, required items answered, maxLength respected.

Without --expect-invalid, every resource must be valid: the exit status is 1 if any is not,
with one line per problem. With --expect-invalid, every resource must be INVALID (a check of
the checker): the exit status is 1 if any is accepted. --context directories hold
Questionnaires that responses may refer to (they win over Questionnaires with the same
canonical among PATHs); they are themselves validated and must be valid.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

try:
    from fhir.resources import __fhir_version__
    from fhir.resources.core.fhirabstractmodel import FHIRAbstractModel
    from fhir.resources.questionnaire import Questionnaire
    from fhir.resources.questionnaireresponse import QuestionnaireResponse
except ImportError as error:  # pragma: no cover - the venv is built from requirements.txt
    sys.exit(f"validate.py: cannot import fhir.resources ({error}); install requirements.txt")

if not __fhir_version__.startswith("4.0."):
    sys.exit(f"validate.py: fhir.resources models FHIR {__fhir_version__}, expected R4 4.0.x")

MODELS = {"Questionnaire": Questionnaire, "QuestionnaireResponse": QuestionnaireResponse}

# Required bindings whose codes fhir.resources lists only partly (it cuts long lists at "+").
ITEM_TYPES = [
    "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
    "string", "text", "url", "choice", "open-choice", "attachment", "reference", "quantity",
]
FULL_ENUMS = {("QuestionnaireItem", "type"): ITEM_TYPES}

# FHIR R4 dateTime / instant with a time part.
DATE_TIME = re.compile(
    r"^-?[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
LOOKS_LIKE_DATE_TIME = re.compile(r"^-?[0-9]{4}-[0-9]{2}-[0-9]{2}T")
NAME = re.compile(r"^[A-Z]([A-Za-z0-9_]){0,254}$")

# The answer element each item type takes.
ANSWER_TYPES = {
    "boolean": {"valueBoolean"},
    "decimal": {"valueDecimal"},
    "integer": {"valueInteger"},
    "date": {"valueDate"},
    "dateTime": {"valueDateTime"},
    "time": {"valueTime"},
    "string": {"valueString"},
    "text": {"valueString"},
    "url": {"valueUri"},
    "choice": {"valueCoding"},
    "open-choice": {"valueCoding", "valueString"},
    "attachment": {"valueAttachment"},
    "reference": {"valueReference"},
    "quantity": {"valueQuantity"},
}
# The enableWhen answer element each question type takes.
ENABLE_WHEN_TYPES = {
    "boolean": {"answerBoolean"},
    "decimal": {"answerDecimal"},
    "integer": {"answerInteger"},
    "date": {"answerDate"},
    "dateTime": {"answerDateTime"},
    "time": {"answerTime"},
    "string": {"answerString"},
    "text": {"answerString"},
    "url": {"answerString"},
    "choice": {"answerCoding"},
    "open-choice": {"answerCoding", "answerString"},
    "reference": {"answerReference"},
    "quantity": {"answerQuantity"},
}
MAX_LENGTH_TYPES = {"boolean", "decimal", "integer", "string", "text", "url", "open-choice"}


class Problems:
    """The problems found in one resource."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


# --------------------------------------------------------------------------------------------
# Generic checks
# --------------------------------------------------------------------------------------------


def check_json(value: Any, path: str, problems: Problems) -> None:
    """No empty or null values; dateTimes with a time have a zone; extensions are well formed."""
    if value is None:
        problems.add(path, "null is not allowed")
    elif isinstance(value, str):
        if value == "":
            problems.add(path, "empty string is not allowed")
        elif LOOKS_LIKE_DATE_TIME.match(value) and not DATE_TIME.match(value):
            problems.add(path, f"dateTime {value!r} is not valid (a time needs a time zone)")
    elif isinstance(value, list):
        if not value:
            problems.add(path, "empty array is not allowed")
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]", problems)
    elif isinstance(value, dict):
        if not value:
            problems.add(path, "empty object is not allowed")
        for name, member in value.items():
            check_json(member, f"{path}.{name}", problems)
        for index, extension in enumerate(value.get("extension", []) or []):
            if isinstance(extension, dict):
                check_extension(extension, f"{path}.extension[{index}]", problems)
        for index, extension in enumerate(value.get("modifierExtension", []) or []):
            if isinstance(extension, dict):
                check_extension(extension, f"{path}.modifierExtension[{index}]", problems)


def check_extension(extension: dict, path: str, problems: Problems) -> None:
    if "url" not in extension:
        problems.add(path, "extension without url")
    values = [name for name in extension if name.startswith("value")]
    nested = "extension" in extension
    if len(values) > 1:
        problems.add(path, f"extension with several values {values}")
    if bool(values) == nested:
        problems.add(path, "ext-1: an extension has either a value or extensions, not both/none")


def walk_model(model: Any, path: str) -> Iterator[tuple[str, Any, str, Any]]:
    """(path, model, field name, value) for every set field of every element."""
    if isinstance(model, list):
        for index, item in enumerate(model):
            yield from walk_model(item, f"{path}[{index}]")
        return
    if not isinstance(model, FHIRAbstractModel):
        return
    for name, field in model.__fields__.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        yield f"{path}.{field.alias}", model, name, value
        yield from walk_model(value, f"{path}.{field.alias}")


def check_codes(model: FHIRAbstractModel, path: str, problems: Problems) -> None:
    """Codes bound to a required value set are from it."""
    for field_path, owner, name, value in walk_model(model, path):
        field = owner.__fields__[name]
        allowed = field.field_info.extra.get("enum_values")
        if not allowed:
            continue
        key = (type(owner).__name__, name)
        if "+" in allowed:
            allowed = FULL_ENUMS.get(key)
            if allowed is None:
                continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item not in allowed:
                problems.add(field_path, f"code {item!r} is not one of {allowed}")


# --------------------------------------------------------------------------------------------
# Questionnaire
# --------------------------------------------------------------------------------------------


def q_items(items: list | None, path: str) -> Iterator[tuple[str, dict]]:
    for index, item in enumerate(items or []):
        item_path = f"{path}.item[{index}]"
        yield item_path, item
        yield from q_items(item.get("item"), item_path)


def check_questionnaire(resource: dict, problems: Problems) -> None:
    name = resource.get("name")
    if name is not None and not NAME.match(name):
        problems.add("Questionnaire.name", f"que-0: {name!r} is not a computable name")
    by_link: dict[str, dict] = {}
    for path, item in q_items(resource.get("item"), "Questionnaire"):
        link_id = item.get("linkId")
        if link_id in by_link:
            problems.add(path, f"que-2: linkId {link_id!r} is not unique")
        by_link[link_id] = item
    for path, item in q_items(resource.get("item"), "Questionnaire"):
        kind = item.get("type")
        children = item.get("item")
        if kind == "group" and not children:
            problems.add(path, "que-1: a group must have items")
        if kind == "display":
            if children:
                problems.add(path, "que-1: a display item cannot have items")
            if "code" in item:
                problems.add(path, "que-3: a display item cannot have a code")
            if "required" in item or "repeats" in item:
                problems.add(path, "que-6: a display item cannot be required or repeat")
            if "readOnly" in item:
                problems.add(path, "que-9: a display item cannot be read-only")
        if "answerOption" in item and "answerValueSet" in item:
            problems.add(path, "que-4: answerOption and answerValueSet together")
        if ("answerOption" in item or "answerValueSet" in item) and kind not in (
            "choice",
            "open-choice",
        ):
            problems.add(path, "que-5: only choice items can have answer options")
        if kind == "choice" and "answerOption" not in item and "answerValueSet" not in item:
            problems.add(path, "a choice item has neither answerOption nor answerValueSet")
        initial = item.get("initial")
        if initial and kind in ("group", "display"):
            problems.add(path, "que-8: a group or display item cannot have an initial value")
        if initial and "answerOption" in item:
            problems.add(path, "que-11: initial values and answerOption together")
        if initial and len(initial) > 1 and not item.get("repeats"):
            problems.add(path, "que-13: several initial values on an item that does not repeat")
        if "maxLength" in item and kind not in MAX_LENGTH_TYPES:
            problems.add(path, f"que-10: maxLength on an item of type {kind}")
        conditions = item.get("enableWhen") or []
        if len(conditions) > 1 and "enableBehavior" not in item:
            problems.add(path, "que-12: several enableWhen need enableBehavior")
        for index, condition in enumerate(conditions):
            condition_path = f"{path}.enableWhen[{index}]"
            answers = [name for name in condition if name.startswith("answer")]
            if condition.get("operator") == "exists" and answers != ["answerBoolean"]:
                problems.add(condition_path, "que-7: operator exists needs answerBoolean")
            target = by_link.get(condition.get("question"))
            if target is None:
                problems.add(condition_path, f"question {condition.get('question')!r} does not exist")
                continue
            if condition.get("question") == item.get("linkId"):
                problems.add(condition_path, "an item cannot depend on itself")
            expected = ENABLE_WHEN_TYPES.get(target.get("type"), set())
            if condition.get("operator") != "exists" and not set(answers) <= expected:
                problems.add(
                    condition_path,
                    f"{answers} does not fit question type {target.get('type')!r}",
                )
            if "answerCoding" in condition and "answerOption" in target:
                coding = condition["answerCoding"]
                if not any(
                    same_coding(option.get("valueCoding"), coding)
                    for option in target["answerOption"]
                ):
                    problems.add(condition_path, f"answerCoding {coding} is no option of the question")


def same_coding(option: dict | None, coding: dict) -> bool:
    return (
        option is not None
        and option.get("code") == coding.get("code")
        and option.get("system") == coding.get("system")
    )


# --------------------------------------------------------------------------------------------
# QuestionnaireResponse
# --------------------------------------------------------------------------------------------


def answer_values(response_items: list | None) -> dict[str, list[dict]]:
    """Every answer in a response, by linkId."""
    found: dict[str, list[dict]] = {}
    for item in response_items or []:
        for answer in item.get("answer", []) or []:
            found.setdefault(item.get("linkId"), []).append(answer)
            nested = answer_values(answer.get("item"))
            for link_id, answers in nested.items():
                found.setdefault(link_id, []).extend(answers)
        for link_id, answers in answer_values(item.get("item")).items():
            found.setdefault(link_id, []).extend(answers)
    return found


def condition_holds(condition: dict, answers: dict[str, list[dict]]) -> bool:
    given = answers.get(condition.get("question"), [])
    operator = condition.get("operator")
    if operator == "exists":
        return bool(given) == condition.get("answerBoolean")
    expected_name = next((name for name in condition if name.startswith("answer")), None)
    expected = condition.get(expected_name)
    value_name = "value" + expected_name[len("answer"):] if expected_name else None

    def matches(answer: dict) -> bool:
        value = answer.get(value_name)
        if value is None:
            return False
        if isinstance(expected, dict) and "code" in expected:
            return same_coding(value, expected)
        if operator in ("=", "!="):
            return value == expected
        try:
            return {">": value > expected, "<": value < expected,
                    ">=": value >= expected, "<=": value <= expected}[operator]
        except (KeyError, TypeError):
            return False

    if operator == "!=":
        return bool(given) and not any(matches(answer) for answer in given)
    return any(matches(answer) for answer in given)


def enabled(item: dict, answers: dict[str, list[dict]]) -> bool:
    conditions = item.get("enableWhen") or []
    if not conditions:
        return True
    results = [condition_holds(condition, answers) for condition in conditions]
    return any(results) if item.get("enableBehavior") == "any" else all(results)


def check_response_items(
    q_children: list,
    r_items: list,
    path: str,
    answers: dict[str, list[dict]],
    problems: Problems,
) -> None:
    """Response items against the questionnaire items at the same level."""
    order = {item["linkId"]: index for index, item in enumerate(q_children)}
    by_link = {item["linkId"]: item for item in q_children}
    last = -1
    seen: dict[str, int] = {}
    for index, r_item in enumerate(r_items):
        r_path = f"{path}.item[{index}]"
        link_id = r_item.get("linkId")
        q_item = by_link.get(link_id)
        if q_item is None:
            problems.add(r_path, f"linkId {link_id!r} is not an item of the questionnaire here")
            continue
        if order[link_id] < last:
            problems.add(r_path, f"item {link_id!r} is out of the questionnaire's order")
        last = order[link_id]
        seen[link_id] = seen.get(link_id, 0) + 1
        if seen[link_id] > 1 and not q_item.get("repeats"):
            problems.add(r_path, f"item {link_id!r} does not repeat but appears more than once")
        if r_item.get("text") not in (None, q_item.get("text")):
            problems.add(r_path, f"text {r_item.get('text')!r} differs from the questionnaire's")
        if not enabled(q_item, answers):
            problems.add(r_path, f"item {link_id!r} is answered but not enabled")
        check_response_item(q_item, r_item, r_path, answers, problems)
    for q_item in q_children:
        if q_item.get("required") and q_item.get("type") != "display" and enabled(q_item, answers):
            if q_item["linkId"] not in seen:
                problems.add(path, f"required item {q_item['linkId']!r} is missing")


def check_response_item(
    q_item: dict, r_item: dict, path: str, answers: dict[str, list[dict]], problems: Problems
) -> None:
    kind = q_item.get("type")
    r_answers = r_item.get("answer") or []
    children = [child for child in q_item.get("item") or []]
    if r_answers and r_item.get("item"):
        problems.add(path, "qrs-1: an item cannot have both answers and items")
    if kind == "group":
        if r_answers:
            problems.add(path, "a group cannot have answers")
        if not r_item.get("item"):
            problems.add(path, "a group in a response needs items")
        check_response_items(children, r_item.get("item") or [], path, answers, problems)
        return
    if kind == "display":
        problems.add(path, "a display item cannot appear in a response")
        return
    if r_item.get("item"):
        problems.add(path, "a question's nested items go under its answers")
    if not r_answers:
        problems.add(path, "a question in a response needs an answer")
    if len(r_answers) > 1 and not q_item.get("repeats"):
        problems.add(path, f"{len(r_answers)} answers to an item that does not repeat")
    expected = ANSWER_TYPES.get(kind, set())
    for index, answer in enumerate(r_answers):
        answer_path = f"{path}.answer[{index}]"
        value_names = [name for name in answer if name.startswith("value")]
        if not set(value_names) <= expected:
            problems.add(answer_path, f"{value_names} does not fit item type {kind!r}")
            continue
        value = answer.get(value_names[0]) if value_names else None
        if kind == "choice" and isinstance(value, dict) and "answerOption" in q_item:
            if not any(same_coding(o.get("valueCoding"), value) for o in q_item["answerOption"]):
                problems.add(answer_path, f"{value} is not an option of the item")
        max_length = q_item.get("maxLength")
        if max_length is not None and isinstance(value, str) and len(value) > max_length:
            problems.add(answer_path, f"longer than maxLength {max_length}")
        if answer.get("item"):
            check_response_items(children, answer["item"], answer_path, answers, problems)


def check_response_rules(items: list | None, path: str, problems: Problems) -> None:
    """qrs-1 and qrs-2 on the response alone."""
    answered_links: set[str] = set()
    for index, item in enumerate(items or []):
        item_path = f"{path}.item[{index}]"
        if item.get("answer") and item.get("item"):
            problems.add(item_path, "qrs-1: nested items belong under answers, not both")
        if item.get("answer"):
            if item.get("linkId") in answered_links:
                problems.add(item_path, "qrs-2: repeated answers belong in one item")
            answered_links.add(item.get("linkId"))
            for a_index, answer in enumerate(item["answer"]):
                check_response_rules(answer.get("item"), f"{item_path}.answer[{a_index}]", problems)
        check_response_rules(item.get("item"), item_path, problems)


def check_response(resource: dict, questionnaires: dict[str, dict], problems: Problems) -> None:
    check_response_rules(resource.get("item"), "QuestionnaireResponse", problems)
    canonical = resource.get("questionnaire")
    questionnaire = questionnaires.get(canonical)
    if questionnaire is None:
        problems.add("QuestionnaireResponse.questionnaire", f"questionnaire {canonical!r} not found")
        return
    answers = answer_values(resource.get("item"))
    if resource.get("status") in ("completed", "amended"):
        check_response_items(
            questionnaire.get("item") or [],
            resource.get("item") or [],
            "QuestionnaireResponse",
            answers,
            problems,
        )


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def json_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        else:
            files.append(path)
    return files


def load(path: Path) -> tuple[dict | None, Problems]:
    problems = Problems()
    try:
        resource = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.add(str(path), f"not readable JSON: {error}")
        return None, problems
    if not isinstance(resource, dict):
        problems.add(str(path), "not a JSON object")
        return None, problems
    return resource, problems


def validate(resource: dict, questionnaires: dict[str, dict], problems: Problems) -> None:
    kind = resource.get("resourceType")
    model = MODELS.get(kind)
    if model is None:
        problems.add("resourceType", f"{kind!r} is not Questionnaire or QuestionnaireResponse")
        return
    check_json(resource, kind, problems)
    try:
        parsed = model.parse_obj(resource)
    except Exception as error:  # pydantic.ValidationError and friends
        for line in str(error).splitlines():
            problems.add(kind, line.strip())
        return
    check_codes(parsed, kind, problems)
    if kind == "Questionnaire":
        check_questionnaire(resource, problems)
    else:
        check_response(resource, questionnaires, problems)


def canonical_of(resource: dict) -> str | None:
    if resource.get("resourceType") != "Questionnaire" or "url" not in resource:
        return None
    version = resource.get("version")
    return f"{resource['url']}|{version}" if version else resource["url"]


def main(argv: list[str]) -> int:
    expect_invalid = False
    context: list[str] = []
    paths: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--expect-invalid":
            expect_invalid = True
        elif arg == "--context":
            context.append(next(args, ""))
        elif arg.startswith("-"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            paths.append(arg)
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2

    files = json_files(paths)
    context_files = json_files(context)
    if not files:
        print("validate.py: no JSON files given", file=sys.stderr)
        return 2

    loaded: dict[Path, tuple[dict | None, Problems]] = {}
    questionnaires: dict[str, dict] = {}
    # Questionnaires of the --context directories win over those among the files, so that a
    # deliberately broken Questionnaire cannot stand in for the one responses answer.
    for path in files + context_files:
        resource, problems = load(path)
        loaded[path] = (resource, problems)
        if resource is not None:
            canonical = canonical_of(resource)
            if canonical:
                questionnaires[canonical] = resource
                questionnaires[resource["url"]] = resource

    failures = 0
    context_bad = 0
    for path in context_files:
        resource, problems = loaded[path]
        if resource is not None:
            validate(resource, questionnaires, problems)
        if problems:
            context_bad += 1
            print(f"INVALID context {path}:")
            for problem in problems.items:
                print(f"    {problem}")
    for path in files:
        resource, problems = loaded[path]
        if resource is not None:
            validate(resource, questionnaires, problems)
        if expect_invalid:
            if problems:
                print(f"rejected as expected {path.name}: {' | '.join(problems.items)}")
            else:
                failures += 1
                print(f"ACCEPTED BUT EXPECTED INVALID {path}")
        elif problems:
            failures += 1
            print(f"INVALID {path}:")
            for problem in problems.items:
                print(f"    {problem}")
        else:
            print(f"valid {path.name}")

    verdict = "rejected" if expect_invalid else "valid"
    print(
        f"FHIR R4 ({__fhir_version__}): {len(files) - failures} of {len(files)} resources {verdict}"
    )
    return 1 if failures or context_bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
