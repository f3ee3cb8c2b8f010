# ruff: noqa
# Pattern: ksks14/my_project@6e0fc14ea6fea77d531ec3e8cfb382f7c4caa48c 深度学习demo/aio_hand/system/routes.py.
from system.views import predict


def setup_routes(app):
    app.router.add_post("/predict", predict)
