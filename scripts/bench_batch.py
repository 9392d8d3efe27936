"""Batch orchestration overhead: a 10-item × 2-language batch vs the same 20 renders called directly.

Both sides start from empty caches (fresh DHF homes, models linked) in the same process and run, so
the ratio shows what the batch flow adds (Prefect tasks, skip checks, thumbnails, artifacts,
manifest). Usage: .venv/bin/python scripts/bench_batch.py [--items 10] [--languages en,zh]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench_render import SENTENCES

ZH = [
    "欢迎来到我们的银行。今天我为您介绍一年期定期存款。",
    "您的存款年利率为百分之三点五，利息按日计算。",
    "如需提前支取，利息将按活期利率计算。",
    "开户请携带有效身份证件和银行卡，大约十分钟即可完成。",
    "您也可以在手机银行开立定期存款。",
    "存款受国家存款保险制度保护。",
    "到期后，存款可以自动续存。",
    "请及时更新您的联系方式。",
    "大额存款请预约客户经理。",
    "感谢您的观看，如有问题请咨询我们的智能助手。",
]


def fresh_home() -> Path:
    from config import load_settings

    home = Path(tempfile.mkdtemp(prefix="dhf-batch-bench-"))
    (home / "models").symlink_to(load_settings().paths.models, target_is_directory=True)
    return home


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--languages", default="en,zh")
    args = parser.parse_args()
    languages = args.languages.split(",")
    import yaml

    from config import load_settings
    from flows.batch_flow import batch_flow
    from pipeline.batch_script import validate_script
    from pipeline.request import RenderRequest
    from pipeline.run import render_video

    items = [{"id": f"q{i}", "text": {"en": SENTENCES[i % 10], "zh": ZH[i % 10]}} for i in range(args.items)]
    for item in items:
        item["text"] = {lang: item["text"][lang] for lang in languages}
    home = fresh_home()
    script_path = home / "bench.yaml"
    script = {"name": "bench", "avatar": "sample", "languages": languages, "items": items}
    script_path.write_text(yaml.safe_dump(script, allow_unicode=True))
    settings = load_settings(home=home)
    script = validate_script(script_path, settings)
    start = time.perf_counter()
    results = batch_flow(script, settings, home / "out")
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    rerun = batch_flow(script, settings, home / "out")
    rerun_s = time.perf_counter() - start

    direct_home = fresh_home()
    direct_settings = load_settings(home=direct_home)
    start = time.perf_counter()
    for job in script.jobs:
        out = direct_home / "out" / job.language / f"{job.item_id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        request = RenderRequest(text=job.text, avatar_id="sample", language=job.language, output=out, voice=job.voice)
        render_video(request, direct_settings)
    direct_s = time.perf_counter() - start
    summary = {
        "videos": len(results),
        "batch_s": round(batch_s, 1),
        "sum_of_single_renders_s": round(direct_s, 1),
        "orchestration_overhead": round(batch_s / direct_s - 1, 3),
        "unchanged_rerun_s": round(rerun_s, 1),
        "rerun_cached": sum(r.status == "cached" for r in rerun),
        "video_seconds": round(sum(r.duration_s or 0 for r in results), 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
