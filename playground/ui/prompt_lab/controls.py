"""The prompt lab's builder controls as one dataclass, and saving / loading them as recipes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from playground.errors import PlaygroundError
from playground.identity import SYSTEM, Owner
from playground.models.loader import LoadedModel
from playground.prompts.fewshot import FewShotConfig, load_recipe, save_recipe
from playground.prompts.templates import TEMPLATES, PromptTemplate, get_template, resolve_template

# The controls that are FewShotConfig's own fields, under the same names.
_FEWSHOT_FIELDS = tuple(f.name for f in fields(FewShotConfig))


@dataclass
class LabControls:
    """The builder's inputs, in the order the handlers receive them."""

    template: str = "chat"
    custom: str = ""
    system: str = ""
    system_suffix: str = ""
    example_template: str = FewShotConfig().example_template
    separator: str = "\n"
    k: int = 2
    selection: str = "first"
    seed: int = 0
    manual_ids: tuple[str, ...] = ()
    cot: bool = False
    cot_trigger: str = FewShotConfig().cot_trigger
    cot_example: str = ""

    @classmethod
    def from_values(cls, *values: Any) -> LabControls:
        c = cls(*values)
        c.k = int(c.k or 0)
        c.seed = int(c.seed or 0)
        c.manual_ids = tuple(str(i) for i in (c.manual_ids or ()))
        c.cot = bool(c.cot)
        for name in ("custom", "system", "system_suffix", "example_template", "cot_trigger", "cot_example"):
            setattr(c, name, getattr(c, name) or "")
        c.separator = c.separator if c.separator is not None else "\n"
        return c

    def values(self) -> list[Any]:
        return [
            list(v) if f.name == "manual_ids" else v for f in fields(self) for v in [getattr(self, f.name)]
        ]

    def fewshot(self) -> FewShotConfig:
        shared = {key: getattr(self, key) for key in _FEWSHOT_FIELDS}
        return FewShotConfig(**{**shared, "cot_example": self.cot_example.strip() or None})

    def resolve(self, loaded: LoadedModel | None) -> PromptTemplate:
        """The template to render with; without a model the chat template is written as plain text."""
        model_default = loaded.default_template if loaded is not None else None
        return resolve_template(self.template, self.custom, model_default, self.system)

    def recipe_template(self) -> PromptTemplate:
        """What a recipe stores: the choice itself, not the loaded model's version of "chat"."""
        system = self.system if self.system.strip() else None
        if self.template == "chat":
            return PromptTemplate("chat", None, system or "")
        if self.template == "custom":
            if not self.custom.strip():
                raise PlaygroundError("Type the custom template before saving the recipe.")
            return PromptTemplate("custom", self.custom, system or "")
        return get_template(self.template, system)

    @classmethod
    def from_recipe(cls, template: PromptTemplate, config: FewShotConfig) -> LabControls:
        known = TEMPLATES.get(template.name)
        if template.text is None:
            name, custom, system = "chat", "", template.system
        elif known is not None and known.text == template.text:
            name, custom = template.name, ""
            system = "" if template.system == known.system else template.system
        else:
            name, custom, system = "custom", template.text, template.system
        shared = {key: getattr(config, key) for key in _FEWSHOT_FIELDS}
        return cls(
            template=name, custom=custom, system=system, **{**shared, "cot_example": config.cot_example or ""}
        )


def save_lab_recipe(name: str, controls: LabControls, owner: Owner = SYSTEM) -> str:
    path = save_recipe(name, controls.recipe_template(), controls.fewshot(), owner)
    return path.stem


def load_lab_recipe(name: str | None) -> LabControls:
    if not name:
        raise PlaygroundError("Pick a saved recipe to load.")
    recipe = load_recipe(name)
    return LabControls.from_recipe(recipe.template, recipe.config)
