"""The person's matte: one interface, a real segmentation model (U²-Net-p) and the weight-free GrabCut.

Why a model: GrabCut decides from colours alone, so it cuts flyaway hair that is close to the backdrop's
colour and drops clothing it was not seeded on (the sample's left shoulder); it also gives a hard mask
whose edge was only blurred, so a band of the photo's light backdrop stays around the hair. U²-Net-p
(`rembg`'s u2netp.onnx, Apache-2.0, 4.5 MB) was trained on salient-object matting and gives a soft
alpha; its 320 × 320 output is refined at the work size with a guided filter (the photo's own edges
decide where the alpha falls), and the colours near the edge are decontaminated (`foreground`), so
neither the backdrop's light nor a hard cut shows on the scene.

The model is optional: when its file is absent the matte falls back to GrabCut (logged; README:
Scenes). A file that is present but differs from its pin is refused by the registry in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vision.errors import ModelError
from vision.models import ModelRegistry
from vision.segmentation import person_mask

log = logging.getLogger(__name__)

U2NETP_MODEL = "person_matte"  # config/models.lock.yaml
U2NETP_SIZE = 320
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PAD_BELOW, PAD_SIDE = 0.25, 0.125  # × the photo: mirrored past its edges before the model sees it
MIN_SHARE, MAX_SHARE = 0.05, 0.9  # of the image: outside this the matte is not trusted (as GrabCut's)


class Matte(Protocol):
    """Separates the person from the photo's backdrop (one per avatar analysis, cached with it)."""

    name: str

    def person(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """uint8 alpha of the image's size (255 = person; soft values at the edge), or None."""
        ...


class GrabCutMatte:
    """The weight-free matte (vision.segmentation): binary, softened when it is composited."""

    name = "grabcut"

    def person(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        return person_mask(image, landmarks)


@dataclass(frozen=True)
class RefineOptions:
    radius: int = 6  # work pixels: the guided filter's window (a strand's width and its halo)
    eps: float = 1e-3  # the guided filter's regularisation, on 0..1 grey: smaller follows finer edges
    steepen: float = 4.0  # the model's alpha is made this much steeper around 0.5 before the filter


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide): `source` smoothed, but with the guide's edges. Used to
    move the model's blurry, low-resolution alpha edge onto the photo's real outline (hair strands)."""

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(source)
    cov = box(guide * source) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


class U2NetMatte:
    """U²-Net-p on the work image, refined at full size with a guided filter."""

    name = "u2netp"

    def __init__(self, model: Path, refine: RefineOptions = RefineOptions(), threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.refine = refine

    def raw(self, image: np.ndarray) -> np.ndarray:
        """The model's alpha (0..1, float32) at the image's size, before refinement.

        The photo is mirrored past its bottom and side edges first (a quarter of its height below, an
        eighth each side): a salient-object model doubts what the frame cuts, so without it a bust's
        shoulder that runs into the border comes out half transparent (the sample's right shoulder)."""
        height, width = image.shape[:2]
        below, side = round(PAD_BELOW * height), round(PAD_SIDE * width)
        padded = cv2.copyMakeBorder(image, 0, below, side, side, cv2.BORDER_REFLECT)
        rgb = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (U2NETP_SIZE, U2NETP_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        small = (small - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        out = self.session.run(None, {self.input: small.transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
        full = cv2.resize(out, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_CUBIC)
        return np.clip(full[:height, side : side + width], 0.0, 1.0)

    def alpha(self, image: np.ndarray) -> np.ndarray:
        """The refined alpha (0..1, float32). The model's edge is ~4 work pixels of blur (upsampled from
        320): it is steepened first, then the guided filter puts the soft band back where the photo
        has an edge (hair strands), and a last curve makes the inside fully opaque and the backdrop
        fully clear (the model leaves a few percent in both)."""
        raw = self.raw(image)
        steep = np.clip((raw - 0.5) * self.refine.steepen + 0.5, 0.0, 1.0)
        guide = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
        refined = guided_filter(guide, steep, self.refine.radius, self.refine.eps)
        return np.clip((refined - 0.1) / 0.8, 0.0, 1.0).astype(np.float32)

    def person(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        alpha = self.alpha(image)
        share = float((alpha > 0.5).mean())
        if not MIN_SHARE <= share <= MAX_SHARE:
            return None
        # Only what is connected to the face: a second salient object in the photo stays backdrop.
        count, labels = cv2.connectedComponents((alpha > 0.05).astype(np.uint8), connectivity=8)
        centre = np.round(landmarks[:, :2].mean(0)).astype(int)
        row = int(np.clip(centre[1], 0, alpha.shape[0] - 1))
        column = int(np.clip(centre[0], 0, alpha.shape[1] - 1))
        face = labels[row, column]
        if count <= 1 or face == 0:
            return None
        alpha = np.where(labels == face, alpha, 0.0)
        return np.round(alpha * 255).astype(np.uint8)


def matte_choice(model: str, registry: ModelRegistry | None) -> str:
    """Which matte runs for the configured `matte.model`: `u2netp` only when its file is there (a
    present file is verified when it is loaded), else `grabcut`. Part of the avatar analysis's key."""
    if model == "grabcut" or registry is None:
        return "grabcut"
    if not (registry.model_dir / registry.spec(U2NETP_MODEL).filename).is_file():
        log.warning("the person matte model is not provisioned; using GrabCut (run dhf models provision)")
        return "grabcut"
    return "u2netp"


def matte_for(model: str, registry: ModelRegistry | None) -> Matte:
    """The configured matte (`matte.model`): `u2netp`, or `grabcut` (no weights). `u2netp` falls back
    to GrabCut when its file was never provisioned (`dhf models provision` fetches it); a file that is
    there but not the pinned one is refused (ModelError, one line naming the file and the fix)."""
    if matte_choice(model, registry) == "grabcut":
        return GrabCutMatte()
    assert registry is not None
    path = registry.path(U2NETP_MODEL)  # ModelError: not the pinned file
    try:
        return U2NetMatte(path)
    except Exception as exc:  # onnxruntime's own errors: a file that passed its pin should not fail here
        raise ModelError(f"the person matte model {path} cannot be loaded ({exc}); run dhf models provision") from exc


def person_alpha(person: np.ndarray, feather: float) -> np.ndarray:
    """The stored person mask as a float alpha: a model's soft matte as it is, GrabCut's binary mask
    softened over `feather` px (its staircase rounded off, a little inside the outline)."""
    values = np.unique(person[::7, ::7])
    if np.all((values == 0) | (values == 255)):
        sigma = max(feather, 0.5)
        blurred = cv2.GaussianBlur((person > 127).astype(np.float32), (0, 0), sigma)
        return np.clip((blurred - 0.6) * 2.5 + 0.5, 0.0, 1.0)
    return person.astype(np.float32) / 255


def _spread(image: np.ndarray, weight: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Normalised convolution: the weighted pixels' colours carried into where the weight is zero,
    finest scale first (each coarser scale only fills what the finer left empty)."""
    out = np.zeros(image.shape, np.float32)
    filled = np.zeros(weight.shape, np.float32)
    for sigma in sigmas:
        num = cv2.GaussianBlur(image * weight[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(weight, (0, 0), sigma)
        estimate = num / np.maximum(den, 1e-6)[..., None]
        take = np.clip(den / 0.05, 0.0, 1.0) * (1 - filled)
        out += estimate * take[..., None]
        filled += take
    return out / np.maximum(filled, 1e-6)[..., None]


class Decontaminator:
    """The person's own colours where the alpha is partial (edge colour decontamination).

    Why: a pixel at the hair's edge is person and backdrop mixed, I = a·F + (1−a)·B. Composited as is
    over a dark scene, its backdrop share B (the light photo backdrop) comes along as a light fringe.
    B is estimated from the nearby clear backdrop and F solved from I; where the alpha is small (the
    solve is unstable there) F leans on the colour of the nearby opaque person instead. The two
    estimates come from the reference photo, once; an idle loop's frames (same framing, same matte)
    only redo the per-pixel solve."""

    SIGMAS = (4.0, 12.0, 36.0)  # work pixels: nearest colours first, wider only where none are near

    def __init__(self, image: np.ndarray, alpha: np.ndarray) -> None:
        pixels = image.astype(np.float32)
        backdrop = _spread(pixels, (alpha < 0.02).astype(np.float32), self.SIGMAS)
        inside = _spread(pixels, (alpha > 0.98).astype(np.float32), self.SIGMAS)
        # Only the partly transparent pixels change: the solve runs on them alone (a few percent of
        # the image), so an idle loop's frame costs a few milliseconds.
        self.edge = np.nonzero((alpha > 0.0) & (alpha < 0.98))
        a = alpha[self.edge][:, None]
        self.opacity = np.maximum(a, 1e-3)
        self.behind = (1 - a) * backdrop[self.edge]
        self.trust = np.clip((a - 0.15) / 0.5, 0.0, 1.0)
        self.inside = (1 - self.trust) * inside[self.edge]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """`image` with its partial-alpha pixels replaced by the estimated person colour (uint8)."""
        solved = np.clip((image[self.edge].astype(np.float32) - self.behind) / self.opacity, 0, 255)
        out = image.copy()
        out[self.edge] = (self.trust * solved + self.inside + 0.5).astype(np.uint8)
        return out


def clean_plate(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo with the person removed (inpainted from its backdrop), for the `blur` backdrop.

    Why: blurring the photo itself smears the person (a dark suit, a light face) into the backdrop
    around the square, so the square's own sharp backdrop stands out as a lighter or darker patch.
    Without the person the blurred canvas is the backdrop's colour, continuous with the photo's."""
    height, width = image.shape[:2]
    scale = 64 / max(height, width)  # the result is blurred with sigma ≈ 40 px anyway
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    share = cv2.resize((alpha > 0.02).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    hole = cv2.dilate((share > 0.02).astype(np.uint8), np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, hole * 255, 3, cv2.INPAINT_TELEA)
    return cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
