"""A contract type for import-linter: a package imports the standard library and itself only.

The sandbox launcher runs in `python -I -S` (no site-packages, no Foreman): any other import
would fail only inside the sandbox, at run time. This finds it in `make lint` instead.
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class StdlibOnlyContract(Contract):
    """`source_modules` (as packages) import only the standard library and their own modules."""

    type_name = "stdlib_only"

    source_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        """Every import out of each source package: allowed if stdlib or inside the package."""
        bad: list[str] = []
        for package in self.source_modules:  # type: ignore[attr-defined]
            inside = {package} | graph.find_descendants(package)
            for module in sorted(inside):
                for imported in sorted(graph.find_modules_directly_imported_by(module)):
                    top = imported.split(".", 1)[0]
                    if imported in inside or top in sys.stdlib_module_names:
                        continue
                    lines = graph.get_import_details(importer=module, imported=imported)
                    where = ", ".join(f"l.{d['line_number']}" for d in lines) or "?"
                    bad.append(f"{module} imports {imported} ({where})")
        return ContractCheck(kept=not bad, metadata={"bad": bad})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """List each import that is neither stdlib nor inside the package."""
        for line in check.metadata["bad"]:
            output.print_error(f"- {line}")
