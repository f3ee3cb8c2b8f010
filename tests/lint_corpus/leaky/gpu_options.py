# ruff: noqa
# Pattern: hiveml/simple-ml-serving@fedeadf86e5aad2d282aa7a6e8f02703cb4eb794 tf_classify_server.py (one Session
#   at module level for a server), with the memory fraction written as a percentage.
import tensorflow as tf

gpu_options = tf.GPUOptions(per_process_gpu_memory_fraction=40)  # expect: lint.gpu-memory-fraction
sess = tf.Session(config=tf.ConfigProto(gpu_options=gpu_options))
other = tf.ConfigProto()
other.gpu_options.per_process_gpu_memory_fraction = 0  # expect: lint.gpu-memory-fraction
