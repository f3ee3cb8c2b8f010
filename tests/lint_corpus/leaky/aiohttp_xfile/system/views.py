# ruff: noqa
# Pattern: ksks14/my_project@6e0fc14ea6fea77d531ec3e8cfb382f7c4caa48c 深度学习demo/aio_hand/system/views.py:
#   an aiohttp handler (registered in routes.py) runs the model function from models_set.py in an executor.
from asyncio import get_event_loop

from aiohttp import web

from system.models_set import detect


async def predict(request):
    form = await request.post()
    file_byte = form["file"].file.read()
    loop = get_event_loop()
    res = await loop.run_in_executor(request.app["executor"], detect, file_byte)
    return web.Response(body=res)
