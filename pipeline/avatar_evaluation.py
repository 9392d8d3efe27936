"""`dhf evaluate-avatar ID`: the quality of a personal avatar, measured on its own held-out footage.

Why it lives in the pipeline: it needs the avatar's analysis (the same framing and work image a
render uses, from `avatar_stage`'s cache) and the library's licence rules; the measurement itself
is `pipeline.held_out`. Nothing is published: the frames are compared in memory and only numbers
leave, so no label or watermark is involved, but a revoked or expired avatar is still refused.
"""

from __future__ import annotations

from avatars.errors import AvatarError, LicenseError
from avatars.library import Avatar
from avatars.license import check_license_record
from config import Settings
from fusion.mouth_bank import MouthBank
from fusion.processors.mouth_bank import MouthBankOptions
from pipeline.held_out import HeldOutEvaluation, evaluate_held_out
from pipeline.stages import avatar_stage
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry


def evaluate_avatar(avatar: Avatar, settings: Settings, share: float = 0.2) -> HeldOutEvaluation:
    if avatar.mouth_bank is None or not avatar.mouth_bank.is_file():
        raise AvatarError(
            f"avatar '{avatar.avatar_id}' v{avatar.version} was not enrolled from a speaking recording; "
            "enroll one with `dhf avatar add REC.mp4 --id ID --license L --speaking`"
        )
    if avatar.revoked:
        raise LicenseError(f"avatar '{avatar.avatar_id}' v{avatar.version} was revoked; it cannot be evaluated")
    check_license_record(avatar.license(), avatar.avatar_id)
    bank = MouthBank.load(avatar.mouth_bank)
    analysis = avatar_stage(avatar, settings)
    work, landmarks = analysis.work_image_and_landmarks(avatar)
    analyser = FaceAnalyser(ModelRegistry(settings.paths.models), settings.face.detector_min_score)
    options = MouthBankOptions(**settings.fusion.mouth_bank.model_dump(exclude={"auto"}))
    return evaluate_held_out(bank, work, landmarks, analyser, options, share)
