"""dynacell.metrics"""
