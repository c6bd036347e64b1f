//! `#[derive(SignalSet)]`: a struct of `Signal<T>` fields, each declared under its field's name.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{spanned::Spanned, Data, DeriveInput, Error, Fields, LitStr, Result};

/// The `impl livecheck::SignalSet` for `input`, or the errors that point at what the derive cannot take.
pub(crate) fn expand(input: &DeriveInput) -> Result<TokenStream> {
    reject_struct_attribute(input)?;
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => return Err(not_a_struct(&data.enum_token, &input.ident, "an enum")),
        Data::Union(data) => return Err(not_a_struct(&data.union_token, &input.ident, "a union")),
    };
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "`#[derive(SignalSet)]` does not take generic parameters: give each field a concrete `Signal<T>`",
        ));
    }
    let signals = match fields {
        Fields::Named(named) => named.named.iter().map(SignalField::parse).collect::<Result<Vec<_>>>()?,
        Fields::Unnamed(unnamed) => {
            return Err(Error::new_spanned(
                unnamed,
                "`#[derive(SignalSet)]` needs named fields: each signal is named after its field \
                 (`struct OrderSignals { order_sent_to_db: Signal<Order> }`)",
            ))
        }
        Fields::Unit => Vec::new(),
    };
    reject_duplicates(&signals)?;

    let ident = &input.ident;
    let names = signals.iter().map(|signal| &signal.name);
    // Each declaration carries its field's span: a field that is not a `Signal<T>` (or whose `T` is not serde)
    // is reported at that field's type.
    let declarations = signals.iter().map(|signal| {
        let (field, name, ty) = (signal.field, &signal.name, &signal.field_type);
        quote_spanned! {ty.span()=> #field: ::livecheck::Signals::declare(signals, #name) }
    });
    let body = match fields {
        Fields::Unit => quote! { #ident },
        _ => quote! { #ident { #(#declarations,)* } },
    };
    Ok(quote! {
        #[automatically_derived]
        impl ::livecheck::SignalSet for #ident {
            const NAMES: &'static [&'static str] = &[#(#names),*];

            fn declare(signals: &mut ::livecheck::Signals) -> Self {
                #body
            }
        }
    })
}

/// One field of the struct: the signal it declares.
struct SignalField<'a> {
    field: &'a syn::Ident,
    field_type: &'a syn::Type,
    /// The signal's name on the wire: the field's, or `#[signal(name = "…")]`.
    name: LitStr,
    /// What to point at when the name is wrong: the attribute's value, or the field.
    name_span: Span,
}

impl<'a> SignalField<'a> {
    fn parse(field: &'a syn::Field) -> Result<Self> {
        let ident = field.ident.as_ref().ok_or_else(|| Error::new_spanned(field, "a signal field needs a name"))?;
        let field_name = ident.to_string();
        let field_name = field_name.strip_prefix("r#").unwrap_or(&field_name);
        let mut renamed: Option<LitStr> = None;
        for attribute in field.attrs.iter().filter(|a| a.path().is_ident("signal")) {
            attribute.parse_nested_meta(|meta| {
                if !meta.path.is_ident("name") {
                    return Err(meta.error("unknown `signal` option: the only one is `name = \"…\"`"));
                }
                let name: LitStr = meta.value()?.parse()?;
                if renamed.is_some() {
                    return Err(Error::new_spanned(&name, "the signal's name is given twice"));
                }
                if name.value().is_empty() {
                    return Err(Error::new_spanned(&name, "a signal's name cannot be empty"));
                }
                renamed = Some(name);
                Ok(())
            })?;
        }
        Ok(match renamed {
            Some(name) => SignalField { field: ident, field_type: &field.ty, name_span: name.span(), name },
            None => SignalField {
                field: ident,
                field_type: &field.ty,
                name: LitStr::new(field_name, ident.span()),
                name_span: ident.span(),
            },
        })
    }
}

/// Two fields declaring one name would fail at registration; say so at compile time, at the second one.
fn reject_duplicates(signals: &[SignalField<'_>]) -> Result<()> {
    for (index, signal) in signals.iter().enumerate() {
        let name = signal.name.value();
        if let Some(first) = signals[..index].iter().find(|s| s.name.value() == name) {
            return Err(Error::new(
                signal.name_span,
                format!("signal `{name}` is declared twice: field `{}` declares it already", first.field),
            ));
        }
    }
    Ok(())
}

/// `#[signal(…)]` names one signal: on the struct it would silently do nothing.
fn reject_struct_attribute(input: &DeriveInput) -> Result<()> {
    match input.attrs.iter().find(|a| a.path().is_ident("signal")) {
        Some(attribute) => {
            Err(Error::new_spanned(attribute, "`#[signal(name = \"…\")]` goes on a field, to name that field's signal"))
        }
        None => Ok(()),
    }
}

fn not_a_struct(keyword: &impl quote::ToTokens, ident: &syn::Ident, what: &str) -> Error {
    Error::new_spanned(
        quote! { #keyword #ident },
        format!(
            "`#[derive(SignalSet)]` works on a struct of `Signal<T>` fields, and `{ident}` is {what}: \
             `struct OrderSignals {{ order_sent_to_db: Signal<Order> }}`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::expand;

    fn error(input: syn::DeriveInput) -> String {
        match expand(&input) {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn declares_each_field_under_its_name_or_the_attribute() {
        let tokens = expand(&parse_quote! {
            struct OrderSignals {
                order_sent_to_db: Signal<Order>,
                #[signal(name = "order_executed")]
                executed: Signal<String>,
                r#type: Signal<()>,
            }
        })
        .unwrap()
        .to_string();
        assert!(
            tokens.contains(r#"order_sent_to_db : :: livecheck :: Signals :: declare (signals , "order_sent_to_db")"#),
            "{tokens}"
        );
        assert!(
            tokens.contains(r#"executed : :: livecheck :: Signals :: declare (signals , "order_executed")"#),
            "{tokens}"
        );
        assert!(tokens.contains(r#"r#type : :: livecheck :: Signals :: declare (signals , "type")"#), "{tokens}");
        assert!(tokens.contains(r#"& ["order_sent_to_db" , "order_executed" , "type"]"#), "{tokens}");
    }

    #[test]
    fn a_unit_struct_is_an_empty_set() {
        let tokens = expand(&parse_quote! { struct NoSignals; }).unwrap().to_string();
        assert!(tokens.contains("const NAMES : & 'static [& 'static str] = & [] ;"), "{tokens}");
        assert!(tokens.contains("{ NoSignals }"), "{tokens}");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases: [(syn::DeriveInput, &str); 9] = [
            (parse_quote! { enum E { A } }, "`E` is an enum"),
            (parse_quote! { union U { a: u32 } }, "`U` is a union"),
            (parse_quote! { struct T(Signal<()>); }, "needs named fields"),
            (parse_quote! { struct G<T> { a: Signal<T> } }, "does not take generic parameters"),
            (parse_quote! { struct L<'a> { a: &'a Signal<()> } }, "does not take generic parameters"),
            (
                parse_quote! { struct D { a: Signal<()>, #[signal(name = "a")] b: Signal<()> } },
                "signal `a` is declared twice: field `a` declares it already",
            ),
            (parse_quote! { struct N { #[signal(nmae = "a")] a: Signal<()> } }, "unknown `signal` option"),
            (parse_quote! { struct Z { #[signal(name = "")] a: Signal<()> } }, "cannot be empty"),
            (parse_quote! { #[signal(name = "a")] struct S { a: Signal<()> } }, "goes on a field"),
        ];
        for (input, expected) in cases {
            let message = error(input);
            assert!(message.contains(expected), "{message:?} does not say {expected:?}");
        }
    }
}
