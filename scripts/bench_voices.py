"""Voice benchmark: espeak-ng and the neural voice (Kokoro-82M) side by side on held-out sentences.

For every English sentence and voice, a whole render (`render_video`, fresh DHF home, cold caches) and
then, on the rendered MP4: PocketSphinx's word error rate against the spoken text (intelligibility),
DNSMOS P.808 and P.835 OVRL (naturalness), the quality gate's lip-sync correlation and lag on the video,
the speech stage's real-time factor, and the whole render against an ffmpeg-only 1080p encode of the
same duration measured right after it (a ratio: the machine is shared and noisy). Then, speech only,
the other languages (DNSMOS and real-time factor; there is no offline recogniser for them here).
None of these sentences was used to tune anything. Usage:
    .venv/bin/python scripts/bench_voices.py [--count 24] [--voices en-us-female en-us-neural-female]
Needs the `bench` extra (speechmos, librosa) and the `test` extra (pocketsphinx).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

from bench_render import ffmpeg_reference, fresh_home_settings  # noqa: E402
from listening import audio_16k, dnsmos, recognise, word_error_rate  # noqa: E402

from config import load_voices  # noqa: E402
from pipeline import stages  # noqa: E402
from pipeline.request import RenderRequest, validate_request  # noqa: E402
from pipeline.run import render_video  # noqa: E402

HELD_OUT_EN = [
    "Good morning, Mrs. Patel. Your new debit card will arrive within five working days.",
    "The overdraft fee is twelve dollars per month, charged on the first business day.",
    "You can transfer up to 10,000 euros a day from the mobile app without a branch visit.",
    "Our branch on King Street opens at 9 a.m. and closes at 5:30 p.m. from Monday to Friday.",
    "If your card is lost or stolen, call us immediately so that we can block it.",
    "A mortgage of two hundred thousand pounds over twenty-five years costs about 1,050 pounds a month.",
    "The savings account pays 2.75% interest, credited to your account every quarter.",
    "Please never share your PIN or one-time password with anyone, including our staff.",
    "Mr. Johnson, your loan application has been approved and the money will reach you tomorrow.",
    "Foreign card payments carry a fee of 1.5% of the amount, shown on your monthly statement.",
    "To change your address, sign in to online banking and open the profile page.",
    "Student accounts have no monthly fee until the age of twenty-six.",
    "We will send you a text message whenever a payment above 500 dollars leaves your account.",
    "Your statement for March is ready. You can download it as a PDF from the documents section.",
    "Cash withdrawals abroad are free at partner banks in over forty countries.",
    "Ms. Garcia, the early repayment charge on your car loan is one month of interest.",
    "The minimum deposit for a fixed term account is one thousand dollars.",
    "Contactless payments are limited to 100 euros per purchase for your safety.",
    "Our fraud team will never ask you to move money to a safe account.",
    "The annual fee for the gold credit card is ninety-five dollars, waived in the first year.",
    "You can pause your card at any time in the app and unpause it with one tap.",
    "Pension contributions made before April the fifth count towards this tax year.",
    "Thank you for waiting. An adviser, Daniel Okafor, will call you back within the hour.",
    "Interest rates may change. We will tell you two months before any change applies.",
]
OTHER_LANGUAGES = {
    "es": [
        "¿Cuál es la tasa de interés de un depósito a plazo fijo de un año? Es del tres coma cinco por ciento.",
        "Su nueva tarjeta llegará en cinco días hábiles. Puede activarla desde la aplicación.",
        "Nunca comparta su clave con nadie, ni siquiera con nuestro personal.",
        "La oficina de la calle Mayor abre a las nueve de la mañana de lunes a viernes.",
    ],
    "fr": [
        "Quel est le taux d'intérêt d'un dépôt à terme d'un an ? Il est de trois virgule cinq pour cent.",
        "Votre nouvelle carte arrivera sous cinq jours ouvrés. Vous pouvez l'activer dans l'application.",
        "Ne communiquez jamais votre code à personne, même pas à nos conseillers.",
        "L'agence de la rue principale ouvre à neuf heures du lundi au vendredi.",
    ],
}


def rendered_row(text: str, voice: str, settings, folder: Path) -> dict:
    target = folder / f"{voice}-{abs(hash(text)) % 10**8}.mp4"
    request = RenderRequest(text=text, avatar_id="sample", language="en", output=target, voice=voice)
    started = time.perf_counter()
    result = render_video(request, settings)
    wall = time.perf_counter() - started
    report = json.loads(result.report.read_text())
    duration = report["video"]["duration_s"]
    reference = ffmpeg_reference(
        duration, settings.video.width, settings.video.height, settings.video.fps, folder / "reference.mp4"
    )
    audio = audio_16k(target)
    heard = recognise(audio)
    lipsync = report["quality"]["lipsync"]
    return {
        "voice": voice,
        "text": text,
        "spoken": report["request"]["spoken_text"],
        "heard": heard,
        "wer": round(word_error_rate(report["request"]["spoken_text"], heard), 3),
        **dnsmos(audio),
        "lipsync": lipsync["correlation"],
        "lag_ms": lipsync["lag_ms"],
        "passed": report["quality"]["passed"],
        "duration_s": duration,
        "speech_rtf": round(report["stage_seconds"]["speech"] / duration, 3),
        "render_ratio": round(wall / reference, 2),
    }


def speech_row(text: str, language: str, voice: str, settings, folder: Path) -> dict:
    request = RenderRequest(text=text, avatar_id="sample", language=language, output=folder / "x.mp4", voice=voice)
    validated = validate_request(request, settings)
    started = time.perf_counter()
    speech = stages.speech_stage(validated, settings)
    seconds = time.perf_counter() - started
    timings = speech.timings()
    return {"language": language, "voice": voice, **dnsmos(audio_16k(speech.wav_path)),
            "rtf": round(seconds / timings.duration, 3)}  # fmt: skip


def summary(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {key: round(statistics.mean(r[key] for r in rows), 3) for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=len(HELD_OUT_EN))
    parser.add_argument("--voices", nargs="+", default=["en-us-female", "en-us-neural-female"])
    parser.add_argument("--other", nargs="*", default=sorted(OTHER_LANGUAGES), help="languages for speech only")
    parser.add_argument("--out", type=Path, default=Path("bench-voices"))
    args = parser.parse_args()
    settings = fresh_home_settings("dhf-bench-voices-")
    home = settings.paths.home
    args.out.mkdir(exist_ok=True)
    rows = []
    for text in HELD_OUT_EN[: args.count]:
        for voice in args.voices:
            rows.append(rendered_row(text, voice, settings, args.out))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    keys = ("wer", "ovrl", "p808", "sig", "bak", "lipsync", "lag_ms", "speech_rtf", "render_ratio")
    table = {voice: summary([r for r in rows if r["voice"] == voice], keys) for voice in args.voices}
    for voice in args.voices:
        mine = [r for r in rows if r["voice"] == voice]
        table[voice]["passed"] = sum(r["passed"] for r in mine)
        table[voice]["sentences"] = len(mine)
        table[voice]["max_abs_lag_ms"] = max(abs(r["lag_ms"]) for r in mine)
        table[voice]["min_lipsync"] = min(r["lipsync"] for r in mine)
    others = []
    voices, _ = load_voices(settings)
    for language in args.other:
        candidates = [name for name, v in voices.items() if v.language == language]
        for text in OTHER_LANGUAGES[language]:
            for voice in candidates:
                others.append(speech_row(text, language, voice, settings, args.out))
                print(json.dumps(others[-1], ensure_ascii=False), flush=True)
    other_table = {
        f"{language}/{voice}": summary([r for r in others if r["voice"] == voice and r["language"] == language],
                                       ("ovrl", "p808", "sig", "bak", "rtf"))
        for language in args.other for voice in sorted({r["voice"] for r in others if r["language"] == language})
    }  # fmt: skip
    result = {"english": table, "other_languages": other_table, "home": str(home)}
    (args.out / "summary.json").write_text(json.dumps({"summary": result, "rows": rows, "other": others}, indent=1,
                                                      ensure_ascii=False))  # fmt: skip
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
