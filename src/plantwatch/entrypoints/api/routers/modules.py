"""GET /modules: every module the API serves, its features and the model in service."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from plantwatch.adapters.modules.catalog import module_config
from plantwatch.bootstrap import Container
from plantwatch.domain.access import Role
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import ContainerDep

router = APIRouter(tags=["modules"], dependencies=[role_dependency(Role.VIEWER)])


class FeatureOut(BaseModel):
    name: str = Field(description="Feature name, as readings and root causes carry it")
    unit: str = Field(description="Unit of measurement; empty when the configuration gives none")
    kind: str = Field(description="numeric, binary or categorical")
    codes: dict[str, float] | None = Field(description="Raw value of each code (binary, categorical)")


class ServedModelOut(BaseModel):
    name: str = Field(description="Detector name")
    version: str = Field(description="Registry version")
    threshold: float = Field(description="Alarm threshold on the detector's score")
    layout: str | None = Field(description="The configured layout whose features the model was trained on")


class ModuleOut(BaseModel):
    name: Module = Field(description="Module name, as in /anomalies/{module} and /ingest/{module}")
    title: str = Field(description="Human-readable title")
    description: str = Field(description="What the module watches")
    timezone: str = Field(
        description="IANA time zone of the plant's clock: its timestamps are local time in it, and a "
        "timestamp sent with an offset is converted to it"
    )
    features: list[FeatureOut] = Field(
        description="The features of the served model's layout (of the first layout when none is served)"
    )
    layouts: list[str] = Field(description="Names of the file layouts the module reads")
    model: ServedModelOut | None = Field(description="The model in service; null when none is loaded")
    problem: str | None = Field(description="Why no model is in service, and what to run")


class ModulesOut(BaseModel):
    modules: list[ModuleOut] = Field(description="Every configured module, the seed modules first")


def module_out(container: Container, module: Module) -> ModuleOut:
    config = module_config(module)
    trained = container.models.get(module)
    layout = config.layout_of(trained.card.feature_names) if trained is not None else None
    shown = layout or config.layouts[0]
    return ModuleOut(
        name=module,
        title=config.display_title,
        description=config.description,
        timezone=config.timezone,
        features=[
            FeatureOut(name=f.name, unit=f.unit, kind=f.kind.value, codes=f.codes) for f in shown.features
        ],
        layouts=[layout.name for layout in config.layouts],
        model=None
        if trained is None
        else ServedModelOut(
            name=trained.card.model_name,
            version=trained.card.version,
            threshold=trained.card.threshold,
            layout=layout.name if layout is not None else None,
        ),
        problem=None if trained is not None else container.model_problem(module),
    )


@router.get("/modules", response_model=ModulesOut, summary="Configured modules, their features and models")
def list_modules(container: ContainerDep) -> ModulesOut:
    return ModulesOut(modules=[module_out(container, module) for module in container.modules])
