# ruff: noqa
# Pattern: Coder-Dilip/tictactoe@c73c2ca969316092daafc33e1cc201f1db45e0c8 predict/views.py: a Django view that
#   imports TensorFlow and loads the Keras model inside the view, once per request.
import json

from django.http import HttpResponse
from django.shortcuts import render


def index(request):
    return render(request, "predict.html")


def predict(request):
    import numpy as np
    import tensorflow as tf

    board = json.loads(request.GET["input_array"])
    game = tf.keras.models.load_model("myModel2")  # expect: lint.model-load-per-item
    move = int(np.argmax(game.predict(np.array([board]))))
    return HttpResponse(json.dumps({"prediction": move}), content_type="application/json")
