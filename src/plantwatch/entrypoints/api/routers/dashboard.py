"""The dashboard: the page at `/`, its script and style, and the plotly.js bundle of the installed plotly."""

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from plantwatch.entrypoints.api.dependencies import ContainerDep

router = APIRouter(include_in_schema=False, tags=["dashboard"])

# Only these files are served: a fixed table, so no request path ever reaches the file system.
_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
# The page changes with each release; the bundle is large and fixed for an installed plotly version.
_PAGE_CACHE = "no-cache"
_BUNDLE_CACHE = "public, max-age=86400"


def _package_file(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package, as a path FileResponse can stream."""
    resource = resources.files(package).joinpath(*parts)
    path = Path(str(resource))
    if not path.is_file():
        raise RuntimeError(f"{package} is missing {'/'.join(parts)}; reinstall the package")
    return path


def _static_file(name: str) -> Path:
    return _package_file("plantwatch.entrypoints.api.dashboard", "static", name)


@router.get("/")
def dashboard_page() -> FileResponse:
    return FileResponse(
        _static_file("index.html"),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": _PAGE_CACHE},
    )


@router.get("/dashboard/plotly.min.js")
def plotly_bundle() -> FileResponse:
    return FileResponse(
        _package_file("plotly", "package_data", "plotly.min.js"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": _BUNDLE_CACHE},
    )


@router.get("/dashboard/config.json")
def dashboard_config(container: ContainerDep) -> dict[str, str]:
    """What the page needs from the settings: the plant's time zone, for wall-clock times."""
    return {"plant_timezone": container.settings.plant_timezone}


@router.get("/dashboard/{name}")
def dashboard_asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
    return FileResponse(_static_file(name), media_type=media_type, headers={"Cache-Control": _PAGE_CACHE})
