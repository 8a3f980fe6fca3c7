//! A module's trainable values as one flat vector, in the module's visiting order: what an optimiser working on
//! host memory, a checkpoint or a gradient all-reduce needs. Values round-trip exactly in the module's dtype.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;
use burn::tensor::{Element, TensorData};

/// Name (module path) and shape of every parameter tensor, in visiting order.
pub fn layout<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct V {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.push((self.path.join("."), param.shape().to_vec()));
        }
    }
    let mut v = V { path: vec![], out: vec![] };
    module.visit(&mut v);
    v.out
}

/// Appends every parameter's values to `out` (cleared first).
pub fn flatten_into<M: Module, T: Element>(module: &M, out: &mut Vec<T>) {
    struct V<'a, T> {
        out: &'a mut Vec<T>,
    }
    impl<T: Element> ModuleVisitor for V<'_, T> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data().convert::<T>();
            self.out.extend_from_slice(data.as_slice::<T>().expect("converted tensor data"));
        }
    }
    out.clear();
    module.visit(&mut V { out });
}

/// Every parameter's values, in visiting order.
pub fn flatten<M: Module>(module: &M) -> Vec<f64> {
    let mut out = vec![];
    flatten_into(module, &mut out);
    out
}

/// Appends every parameter's gradient to `out` (cleared first); parameters without a gradient contribute zeros.
pub fn flatten_grads_into<M: Module, T: Element>(module: &M, grads: &Gradients, out: &mut Vec<T>) {
    struct V<'a, T> {
        grads: &'a Gradients,
        out: &'a mut Vec<T>,
    }
    impl<T: Element> ModuleVisitor for V<'_, T> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            match param.val().grad(self.grads) {
                Some(g) => {
                    let data = g.into_data().convert::<T>();
                    self.out.extend_from_slice(data.as_slice::<T>().expect("converted gradient data"));
                }
                None => {
                    let n: usize = param.shape().num_elements();
                    self.out.extend(std::iter::repeat_n(T::from_elem(0.0f64), n));
                }
            }
        }
    }
    out.clear();
    module.visit(&mut V { grads, out });
}

/// Every parameter's gradient, in visiting order.
pub fn flatten_grads<M: Module>(module: &M, grads: &Gradients) -> Vec<f64> {
    let mut out = vec![];
    flatten_grads_into(module, grads, &mut out);
    out
}

/// The module with its parameters replaced by `values` (visiting order; the length must match), keeping each
/// parameter's id, device, dtype and gradient requirement.
pub fn unflatten<M: Module, T: Element>(module: M, values: &[T]) -> M {
    struct Mp<'a, T> {
        values: &'a [T],
        at: usize,
    }
    impl<T: Element> ModuleMapper for Mp<'_, T> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let values = self.values;
            let start = self.at;
            let shape = param.shape();
            let n: usize = shape.num_elements();
            self.at += n;
            param.map(|t| {
                let grad = t.is_require_grad();
                let data = TensorData::new(values[start..start + n].to_vec(), shape);
                Tensor::from_data(data, (&t.device(), t.dtype())).set_require_grad(grad)
            })
        }
    }
    let total: usize = layout(&module).iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(total, values.len(), "flat parameter vector has the wrong length");
    module.map(&mut Mp { values, at: 0 })
}
