"""JUnit XML for CI: one test case per checker, a failure for each violation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

if TYPE_CHECKING:
    from checks.harness.runner import TestResult


def write_junit(result: TestResult, path: Path, folder: Path | None = None) -> None:
    verdicts = result.verdicts
    failures = sum(1 for v in verdicts.values() if v.valid is False)
    unknown = sum(1 for v in verdicts.values() if v.valid == "unknown")
    suite = ET.Element(
        "testsuite",
        name=f"d11.{result.spec.name}",
        tests=str(len(verdicts)),
        failures=str(failures),
        errors=str(unknown),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (("seed", result.spec.seed), ("digest", result.digest)):
        ET.SubElement(props, "property", name=key, value=str(value))
    if folder is not None:
        ET.SubElement(props, "property", name="store", value=str(folder))
    for name, verdict in verdicts.items():
        case = ET.SubElement(suite, "testcase", classname=f"d11.{result.spec.chapter}", name=name)
        if verdict.valid is False:
            failure = ET.SubElement(case, "failure", message=verdict.summary)
            failure.text = f"replay: d11 replay {folder}" if folder is not None else verdict.summary
        elif verdict.valid == "unknown":
            ET.SubElement(case, "error", message=f"unknown: {verdict.summary}")
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
