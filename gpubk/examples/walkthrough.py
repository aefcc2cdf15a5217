"""The user's Keras-backend walkthrough (shared/reference/keras_backend_walkthrough.md), run on
gpubk: `import keras.backend as K` becomes `import gpubk as K`, `inter_sess.run(x)` becomes
`K.eval(x)`, and the TensorFlow session lines are dropped. Every other call is as written.

Run it with `python -m gpubk.examples.walkthrough`.
"""
import numpy as np

import gpubk as K


def main() -> dict:
    """Runs the walkthrough, printing as it goes; returns the values worth checking."""
    seen = {}
    inputs = K.placeholder(shape=(2, 4, 5))
    seen["placeholder_shapes"] = [K.int_shape(inputs)]
    inputs = K.placeholder(shape=(None, 4, 5))
    seen["placeholder_shapes"].append(K.int_shape(inputs))
    inputs = K.placeholder(ndim=3)
    seen["placeholder_shapes"].append(K.int_shape(inputs))
    print(inputs)

    val = np.random.random((3, 4, 5))
    var = K.variable(value=val)
    print(var)
    var = K.zeros(shape=(3, 4, 5))
    var = K.ones(shape=(3, 4, 5))

    b = K.random_uniform_variable(shape=(3, 4), low=0, high=1)
    c = K.random_normal_variable(shape=(3, 4), mean=0, scale=1)
    d = K.random_normal_variable(shape=(3, 4), mean=0, scale=1)
    a = b + c * K.abs(d)
    print("b:", K.eval(b))
    print("c:", K.eval(c))
    print("d:", K.eval(d))
    print("a:", K.eval(a))
    seen["b"], seen["c"], seen["d"], seen["a"] = (K.eval(t) for t in (b, c, d, a))
    c = K.dot(a, K.transpose(b))
    print("transpose:")
    print(K.eval(b))
    print(K.eval(K.transpose(b)))
    seen["dot_a_bT"] = K.eval(c)

    aqq = K.ones((1, 1))
    bqq = K.ones((1, 2))
    cqq = K.dot(aqq, bqq)
    print(K.eval(aqq))
    print(K.eval(bqq))
    print(cqq.shape)
    print(K.eval(cqq))
    seen["cqq"] = K.eval(cqq)

    print("c1:", K.eval(c))
    a = K.sum(b, axis=1)
    print("sum:", K.eval(a))
    seen["sum_b"] = K.eval(a)

    a = K.softmax(b)
    print(K.eval(b))
    print("softmax:", K.eval(a))
    seen["softmax_b"] = K.eval(a)

    a = K.concatenate([b, c], axis=-1)
    print("b:", K.eval(b))
    print("c:", K.eval(c))
    print("a3:", K.eval(a))
    print(a)
    seen["concat"] = K.eval(a)

    print(K.floatx())
    arr = np.array([1.0, 2.0], dtype="float64")
    print(arr.dtype)
    new_arr = K.cast_to_floatx(arr)
    print(new_arr)
    print(new_arr.dtype)
    seen["cast_to_floatx"] = new_arr

    var1 = np.array([1.0, 2.0], dtype="float64")
    print(var1)
    var2 = np.array([1.0, 1.0], dtype="float64")
    print(var2)
    new_var1 = K.cast_to_floatx(var1)
    new_var2 = K.cast_to_floatx(var2)
    print(new_var1.dtype, new_var2.dtype)

    val1 = np.array([[3, 3], [5, 5]])
    kvar1 = K.variable(value=val1, dtype="float64", name="example_var")
    val2 = np.array([[4, 4], [8, 8]])
    kvar2 = K.variable(value=val2, dtype="float64", name="example_var1")
    print(val1, val2)
    print(K.eval(K.dot(kvar1, kvar2)))
    seen["dot_example"] = K.eval(K.dot(kvar1, kvar2))

    print(K.eval(K.constant(value=[1.2, 1.3])))
    seen["constant"] = K.eval(K.constant(value=[1.2, 1.3]))
    print(K.eval(K.eye(3)))

    kvar = K.zeros((21, 10))
    print(K.count_params(kvar))
    seen["count_params"] = K.count_params(kvar)

    print("before:", K.eval(K.eye(2)))
    kvar_tile = K.tile(K.eye(2), (2, 2))
    print("after:", K.eval(kvar_tile))
    seen["tile"] = K.eval(kvar_tile)

    print("before:", K.eval(K.ones((3, 3, 3))))
    A = K.stack(K.ones((3, 3, 3)), axis=0)
    print("after:", K.eval(A))
    seen["stack"] = K.eval(A)

    print("before:", K.eval(K.eye(3)))
    print(K.eval(K.repeat_elements(K.eye(3), 3, 1)))
    seen["repeat_elements"] = K.eval(K.repeat_elements(K.eye(3), 3, 1))

    print("before:", K.eval(K.eye(3)))
    print(K.get_value(K.eye(3)), type(K.get_value(K.eye(3))))
    seen["get_value_type"] = type(K.get_value(K.eye(3)))

    print(K.eval(K.eye(2)))
    print(K.print_tensor(K.eye(2)))

    print("before", K.eval(K.ones((3, 3))), K.eval(K.eye(3)))
    print()
    cce = K.eval(K.categorical_crossentropy(K.ones((3, 3)), K.eye(3)))
    print("categorical crossentropy:", cce)
    seen["crossentropy"] = cce
    print("gradients")
    varqq = [K.zeros((3, 3)), K.ones((3, 3)), K.ones((3, 3))]
    loss = K.categorical_crossentropy(varqq, K.eye(3))
    grads = K.gradients(loss, var)
    print(grads)
    seen["gradients"] = grads
    return seen


if __name__ == "__main__":
    main()
