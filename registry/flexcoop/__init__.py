"""FLEXCoop (D6.5) compatibility: the Eve ``devices`` resource's field mapping and its
``where`` / ``sort`` / ``projection`` compiler onto :class:`registry.discovery.DiscoveryQuery`.

Nothing here touches a database or HTTP: :mod:`registry.api.flexcoop` serves it.
"""
