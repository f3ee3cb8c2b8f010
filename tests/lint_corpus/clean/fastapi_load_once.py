# ruff: noqa
# Pattern: 23-2-software-architecture/ml-inference-opti-arch@d6eb92bbffaf068c68efa9d30a5f9d2651de037c
#   backend/inference_serving/build_assets/yolo_v5/main.py: the Keras model is loaded once at import, the
#   endpoint only predicts.
import numpy as np
from fastapi import FastAPI
from tensorflow.keras.models import load_model

app = FastAPI()
model = load_model("./yolo_v5")


@app.post("/")
async def predict(json_body: dict):
    x = np.array(json_body["inputs"]["x"])
    return {"body": model.predict(x).tolist()}
