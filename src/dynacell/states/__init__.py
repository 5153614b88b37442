"""dynacell.states"""
