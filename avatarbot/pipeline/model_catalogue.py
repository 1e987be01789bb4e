"""Known neural models: where their files live, what they weigh, and under which licence.

Sizes and sha256 digests of the classic checkpoints come from shared/model-manifests
(layouts.json). A file without a digest is accepted on presence alone. A file without a
URL cannot be downloaded: it is placed by hand under DATA_DIR/models/<backend>/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelFile:
    name: str  # file name inside DATA_DIR/models/<backend>/
    sha256: str | None = None
    size: int | None = None  # bytes
    url: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    backend: str  # folder under DATA_DIR/models and the pipeline backend that uses it
    files: tuple[ModelFile, ...]
    license: str  # SPDX id, or LicenseRef-* for custom terms
    commercial_use: bool
    source_url: str
    description: str = ""
    memory_mb: int = 0  # rough resident size once loaded, for the LRU budget
    dependencies: tuple[str, ...] = field(default_factory=tuple)  # pip names of packages needed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        data["dependencies"] = list(self.dependencies)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        values = dict(data)
        values["files"] = tuple(ModelFile(**f) for f in values.get("files", ()))
        values["dependencies"] = tuple(values.get("dependencies", ()))
        return cls(**values)

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


WAV2LIP_LICENSE = "LicenseRef-Wav2Lip-NonCommercial"

DEFAULT_CATALOGUE: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="wav2lip_gan",
        version="1.0",
        backend="wav2lip",
        files=(
            ModelFile(
                "wav2lip_gan.pth",
                sha256="ca9ab7b7b812c0e80a6e70a5977c545a1e8a365a6c49d5e533023c034d7ac3d8",
                size=435_801_865,
            ),
        ),
        license=WAV2LIP_LICENSE,
        commercial_use=False,
        source_url="https://github.com/Rudrabha/Wav2Lip",
        description="Wav2Lip + GAN lip-sync generator (classic checkpoint, research use only)",
        memory_mb=160,
        dependencies=("torch",),
    ),
    ModelInfo(
        name="wav2lip",
        version="1.0",
        backend="wav2lip",
        files=(ModelFile("wav2lip.pth"),),
        license=WAV2LIP_LICENSE,
        commercial_use=False,
        source_url="https://github.com/Rudrabha/Wav2Lip",
        description="Wav2Lip lip-sync generator without GAN fine-tuning",
        memory_mb=160,
        dependencies=("torch",),
    ),
    ModelInfo(
        name="gfpgan_v1.4",
        version="1.4",
        backend="gfpgan",
        files=(
            ModelFile(
                "GFPGANv1.4.pth",
                sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
                size=348_632_874,
                url="https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth",
            ),
        ),
        license="Apache-2.0",
        commercial_use=True,
        source_url="https://github.com/TencentARC/GFPGAN",
        description="GFPGAN v1.4 blind face restoration (clean architecture)",
        memory_mb=360,
        dependencies=("torch",),
    ),
    ModelInfo(
        name="xtts_v2",
        version="2.0",
        backend="coqui",
        files=(ModelFile("xtts_v2/model.pth"), ModelFile("xtts_v2/config.json")),
        license="LicenseRef-Coqui-Public-Model-License",
        commercial_use=False,
        source_url="https://huggingface.co/coqui/XTTS-v2",
        description="Coqui XTTS v2 multilingual TTS with voice cloning",
        memory_mb=2000,
        dependencies=("coqui-tts",),
    ),
)
