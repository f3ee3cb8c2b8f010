# ruff: noqa
# Pattern: 23-2-software-architecture/ml-inference-opti-arch@d6eb92bbffaf068c68efa9d30a5f9d2651de037c
#   backend/inference_serving/build_assets/yolo_v5/main.py (a FastAPI `@app.post` endpoint), with the model load
#   moved from module level into the helper module the endpoint calls (relative import), as TF2 code does.
import numpy as np
from fastapi import FastAPI

from .inference import detect_objects

app = FastAPI()


@app.post("/detect")
async def detect(json_body: dict):
    pixels = np.array(json_body["inputs"]["x"], dtype=np.uint8)
    return {"detections": detect_objects(pixels)}
