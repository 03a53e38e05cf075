"""Many nodes as one service: routing to the node that holds a user, node liveness.

Only used when `REDIS_URL` is set; a single node never imports this package.
"""
